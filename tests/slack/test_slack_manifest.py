"""manifest/slack.yaml and the app agree: every subscribed event, command and interaction is handled, and nothing
more; every Web API method the running app calls is granted by the manifest's scopes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack import ACTIONS, COMMANDS, EVENT_TYPES, EVENTS_PATH

from .slack_harness import SlackServer
from .slack_payloads import ALICE, CHANNEL, DM, envelope, home_opened, mention, message

MANIFEST = Path(__file__).resolve().parents[2] / "manifest" / "slack.yaml"

# The scope Slack requires before it delivers each event (None: none).
_SCOPE_OF_EVENT: dict[str, str | None] = {
    "app_mention": "app_mentions:read",
    "app_home_opened": None,
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.mpim": "mpim:history",
}


def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def bot_events() -> list[str]:
    return manifest()["settings"]["event_subscriptions"]["bot_events"]


def test_the_manifest_subscribes_to_exactly_the_event_types_the_app_handles():
    assert {name.split(".")[0] for name in bot_events()} == set(EVENT_TYPES)
    assert "message.im" in bot_events()  # direct messages are a requirement, not an option


def test_the_manifest_declares_exactly_the_apps_slash_commands_on_the_events_path():
    commands = manifest()["features"]["slash_commands"]
    assert [command["command"] for command in commands] == list(COMMANDS)
    assert all(command["url"].endswith(EVENTS_PATH) for command in commands)
    assert manifest()["settings"]["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)


def test_the_manifest_asks_for_every_scope_its_events_and_replies_need():
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    needed = {_SCOPE_OF_EVENT[name] for name in bot_events()} - {None} | {"chat:write", "commands"}
    assert needed <= scopes
    assert {"app_mentions:read", "chat:write", "im:history", "im:read", "im:write", "commands"} <= scopes


def test_interactivity_is_on_exactly_when_the_app_has_actions_and_posts_to_the_events_path():
    interactivity = manifest()["settings"]["interactivity"]
    assert interactivity["is_enabled"] is bool(ACTIONS)
    assert interactivity["request_url"].endswith(EVENTS_PATH)


def _payload_for(name: str) -> dict[str, Any]:
    kinds = {"message.im": ("im", DM), "message.channels": ("channel", CHANNEL)}
    kinds |= {"message.groups": ("group", "G0PRIVATE"), "message.mpim": ("mpim", "G0GROUPDM")}
    if name == "app_mention":
        return envelope(mention("hello"))
    if name == "app_home_opened":
        return envelope(home_opened())
    channel_type, channel = kinds[name]
    return envelope(message("hello", channel=channel, channel_type=channel_type, user=ALICE))


@pytest.mark.parametrize("name", bot_events())
async def test_the_running_app_handles_each_subscribed_event(slack: SlackServer, name: str):
    # Bolt answers 404 to an event no listener takes, and Slack then redelivers it: every one must be taken.
    response = await slack.deliver(_payload_for(name))
    assert response.status == 200


async def test_an_event_the_manifest_does_not_subscribe_to_is_not_handled(slack: SlackServer):
    body = envelope({"type": "reaction_added", "user": ALICE, "reaction": "tada", "event_ts": "1.2"})
    assert (await slack.deliver(body)).status == 404  # the check above can tell handled from not


@pytest.mark.parametrize("command", [c["command"] for c in manifest()["features"]["slash_commands"]])
async def test_the_running_app_answers_the_manifests_slash_command(slack: SlackServer, command: str):
    response = await slack.command(channel=DM, user=ALICE, command=command)
    assert response.status == 200
    assert response.json()["response_type"] == "ephemeral"


@pytest.mark.parametrize("action_id", ACTIONS)
async def test_the_running_app_takes_each_action_its_buttons_send(slack: SlackServer, action_id: str):
    response = await slack.click(value="up:abc", message_ts="1.2", thread_ts=None, action_id=action_id)
    assert response.status == 200


async def test_an_action_the_app_has_no_button_for_is_not_taken(slack: SlackServer):
    response = await slack.click(value="up:abc", message_ts="1.2", thread_ts=None, action_id="someone_elses")
    assert response.status == 404  # the check above can tell taken from not
