"""Slack request bodies as Slack sends them (Events API envelopes, slash-command forms), signed like Slack."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from .fake_slack import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0GENERAL"
DM = "D0ALICEDM"
ALICE = "U0ALICE"
BOB = "U0BOB"

_event_ids = itertools.count(1)
_ts = itertools.count(1)


def new_ts() -> str:
    return f"{1_700_000_000 + next(_ts)}.{next(_ts):06d}"


def sign(body: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """X-Slack-Signature: v0= + hex HMAC-SHA256 of "v0:{timestamp}:{body}" with the signing secret."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def envelope(
    event: dict[str, Any], *, event_id: str | None = None, team: str = TEAM_ID, app: str = APP_ID
) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "context_team_id": team,
        "api_app_id": app,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev0{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def _blocks(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "rich_text",
            "block_id": "b1",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


def mention(
    text: str,
    *,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel: str = CHANNEL,
    user: str = ALICE,
) -> dict[str, Any]:
    """An app_mention event: the text starts with the bot's <@id>, as Slack writes it."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "team": TEAM_ID,
        "client_msg_id": f"msg-{ts}",
        "blocks": _blocks(text),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    return event


def message(
    text: str,
    *,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel: str = CHANNEL,
    channel_type: str = "channel",
    user: str | None = ALICE,
    **extra: Any,
) -> dict[str, Any]:
    """A message.channels / message.im / ... event."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "channel_type": channel_type,
        "team": TEAM_ID,
    }
    if user is not None:
        event["user"] = user
        event["client_msg_id"] = f"msg-{ts}"
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def dm(
    text: str, *, thread_ts: str | None = None, user: str = ALICE, channel: str = DM, **extra: Any
) -> dict[str, Any]:
    return message(text, thread_ts=thread_ts, channel=channel, channel_type="im", user=user, **extra)


def own_message(
    text: str, *, channel: str = CHANNEL, channel_type: str = "channel", **extra: Any
) -> dict[str, Any]:
    """What Slack sends back when the bot itself posts: bot_id and the bot's user id."""
    event = message(text, channel=channel, channel_type=channel_type, user=BOT_USER_ID, **extra)
    event["bot_id"] = BOT_ID
    event["app_id"] = "A0FAKE"
    event["bot_profile"] = {"id": BOT_ID, "name": "wikibot", "app_id": "A0FAKE", "team_id": TEAM_ID}
    return event


def slash_command(
    *, channel: str, user: str = ALICE, command: str = "/wiki-reset", text: str = "", team: str = TEAM_ID
) -> str:
    """The form body of a slash command (application/x-www-form-urlencoded)."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.test/commands/T0FAKE01/1/abc",
            "trigger_id": "1.2.abc",
        }
    )


def as_json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def home_opened(*, tab: str = "messages", user: str = ALICE, channel: str = DM) -> dict[str, Any]:
    """app_home_opened: the user opened the app's Messages tab (the agent's) or its Home tab."""
    return {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab, "event_ts": new_ts()}


def feedback_click(
    *,
    value: str,
    message_ts: str,
    thread_ts: str | None,
    channel: str = CHANNEL,
    user: str = ALICE,
    action_id: str = "wikibot_feedback",
) -> str:
    """The form body of a block_actions interaction: a click on a feedback button of a bot's message."""
    message: dict[str, Any] = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": message_ts}
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "1.2.feedback",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"},
        "message": message,
        "state": {"values": {}},
        "response_url": "https://hooks.slack.test/actions/T0FAKE01/1/abc",
        "actions": [
            {
                "type": "feedback_buttons",
                "action_id": action_id,
                "block_id": "feedback",
                "value": value,
                "action_ts": new_ts(),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})
