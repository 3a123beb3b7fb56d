"""Which Slack events are messages for the bot: a pure reading of the payload, table-tested."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.slack.mrkdwn import mentions, to_plain
from adapters.slack.sessions import Conversation, conversation_of, valid_id

# A user's own words: plain, with a file attached, or a thread reply also sent to the channel. Every other
# subtype is an edit, a deletion, a join, a bot, a topic change... and never gets an answer.
_USER_SUBTYPES = frozenset({"", "file_share", "thread_broadcast"})


@dataclass(frozen=True, slots=True)
class InboundMessage:
    conversation: Conversation
    event_type: str
    user_id: str
    ts: str
    # What the model reads: the bot's mention removed, Slack's <...> references spelled out.
    text: str
    mentions_bot: bool
    # Someone other than the bot is mentioned: in a thread, the message is addressed to them.
    mentions_others: bool
    has_files: bool
    # The asker's own workspace: another than the conversation's in a channel shared with another org.
    user_team_id: str = ""

    @property
    def file_only(self) -> bool:
        return self.has_files and not self.text

    @property
    def dedupe_key(self) -> str:
        """One message can arrive as app_mention and as message.*: both share channel and ts."""
        return f"{self.conversation.team_id}:{self.conversation.channel_id}:{self.ts}"


def read_message(body: Mapping[str, Any], *, bot_user_id: str, bot_id: str = "") -> InboundMessage | None:
    """A user's message to read, or None for anything the bot must ignore."""
    event = body.get("event")
    if not isinstance(event, Mapping):
        return None
    event_type = event.get("type")
    if event_type not in ("message", "app_mention"):
        return None
    if str(event.get("subtype") or "") not in _USER_SUBTYPES:
        return None
    if event.get("bot_id") or event.get("bot_profile") or "edited" in event or event.get("hidden"):
        return None
    user = event.get("user")
    if not valid_id(user) or user == bot_user_id or (bot_id and event.get("bot_id") == bot_id):
        return None
    conversation = conversation_of(body)
    if conversation is None:
        return None
    raw = event.get("text")
    raw_text = raw if isinstance(raw, str) else ""
    mentioned = mentions(raw_text)
    return InboundMessage(
        conversation=conversation,
        event_type=str(event_type),
        user_id=str(user),
        ts=str(event["ts"]),
        text=to_plain(raw_text, bot_user_id=bot_user_id),
        mentions_bot=event_type == "app_mention" or (bool(bot_user_id) and bot_user_id in mentioned),
        mentions_others=bool(mentioned - {bot_user_id}),
        has_files=bool(event.get("files")),
        user_team_id=str(event["user_team"]) if valid_id(event.get("user_team")) else conversation.team_id,
    )
