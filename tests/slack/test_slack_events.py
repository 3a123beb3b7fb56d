"""Which events are messages for the bot: a pure reading of the payload."""

from __future__ import annotations

import pytest

from adapters.slack.events import read_message

from .fake_slack import BOT_ID, BOT_USER_ID
from .slack_payloads import ALICE, BOB, DM, dm, envelope, mention, message, own_message


def read(event):
    return read_message(envelope(event), bot_user_id=BOT_USER_ID, bot_id=BOT_ID)


def test_a_mention_is_read_without_the_bots_mention():
    inbound = read(mention("how do I deploy?"))
    assert inbound is not None
    assert inbound.text == "how do I deploy?" and inbound.mentions_bot and not inbound.mentions_others


def test_a_message_that_names_someone_else_is_marked_as_addressed_to_them():
    inbound = read(message(f"<@{BOB}> can you check?", thread_ts="1700000000.000001"))
    assert inbound is not None and inbound.mentions_others and not inbound.mentions_bot


def test_a_file_without_text_is_file_only_and_a_file_with_a_question_is_a_question():
    files = [{"id": "F1"}]
    only = read(dm("", subtype="file_share", files=files))
    asked = read(dm("what is in this log?", subtype="file_share", files=files))
    assert only is not None and only.file_only
    assert asked is not None and not asked.file_only and asked.text == "what is in this log?"


def test_a_thread_broadcast_is_still_a_users_message():
    assert read(message("also to channel", thread_ts="1700000000.000001", subtype="thread_broadcast"))


@pytest.mark.parametrize(
    "event",
    [
        own_message("my answer"),
        own_message("my answer", channel=DM, channel_type="im"),
        message("from another bot", user="U0OTHERBOT", bot_id="B0OTHER"),
        message("bot message", user=None, subtype="bot_message", bot_id="B0OTHER"),
        dm("edit", subtype="message_changed"),
        dm("", subtype="message_deleted"),
        message("joined", subtype="channel_join"),
        message("left", subtype="channel_leave"),
        message("topic", subtype="channel_topic"),
        {**mention("edited mention"), "edited": {"user": ALICE, "ts": "1700000000.000009"}},
        {**dm("hidden"), "hidden": True},
        {"type": "reaction_added", "user": ALICE, "reaction": "tada"},
        message("no user", user=None),
    ],
)
def test_what_the_bot_ignores(event):
    assert read(event) is None
