"""Session keys as a pure function of real event payloads: one table, every kind of conversation."""

from __future__ import annotations

import pytest

from adapters.slack.sessions import Conversation, channel_prefix, conversation_of

from .slack_payloads import envelope

T = "T0FAKE01"

# (case, event, expected key, expected reply thread)
CASES = [
    (
        "channel mention at top level: a thread rooted at the mention",
        {"type": "app_mention", "channel": "C0GENERAL", "ts": "1700000001.000100", "user": "U0ALICE"},
        f"slack:{T}:C0GENERAL:1700000001.000100",
        "1700000001.000100",
    ),
    (
        "mention inside a thread: the thread's root",
        {
            "type": "app_mention",
            "channel": "C0GENERAL",
            "ts": "1700000009.000100",
            "thread_ts": "1700000001.000100",
            "user": "U0ALICE",
        },
        f"slack:{T}:C0GENERAL:1700000001.000100",
        "1700000001.000100",
    ),
    (
        "channel thread reply without a mention: the same session",
        {
            "type": "message",
            "channel_type": "channel",
            "channel": "C0GENERAL",
            "ts": "1700000010.000100",
            "thread_ts": "1700000001.000100",
        },
        f"slack:{T}:C0GENERAL:1700000001.000100",
        "1700000001.000100",
    ),
    (
        "private channel (group) mention",
        {"type": "app_mention", "channel": "G0PRIVATE", "ts": "1700000002.000100"},
        f"slack:{T}:G0PRIVATE:1700000002.000100",
        "1700000002.000100",
    ),
    (
        "group DM (mpim) is threaded like a channel",
        {"type": "message", "channel_type": "mpim", "channel": "C0GROUPDM", "ts": "1700000003.000100"},
        f"slack:{T}:C0GROUPDM:1700000003.000100",
        "1700000003.000100",
    ),
    (
        "DM top level: one continuing conversation, answered at the top level",
        {"type": "message", "channel_type": "im", "channel": "D0ALICEDM", "ts": "1700000004.000100"},
        f"slack:{T}:D0ALICEDM:main",
        None,
    ),
    (
        "a second DM top-level message: the same conversation",
        {"type": "message", "channel_type": "im", "channel": "D0ALICEDM", "ts": "1700000099.000100"},
        f"slack:{T}:D0ALICEDM:main",
        None,
    ),
    (
        "DM thread: its own session",
        {
            "type": "message",
            "channel_type": "im",
            "channel": "D0ALICEDM",
            "ts": "1700000005.000200",
            "thread_ts": "1700000004.000100",
        },
        f"slack:{T}:D0ALICEDM:1700000004.000100",
        "1700000004.000100",
    ),
    (
        "a thread parent (thread_ts == ts) in a DM stays at the top level",
        {
            "type": "message",
            "channel_type": "im",
            "channel": "D0ALICEDM",
            "ts": "1700000004.000100",
            "thread_ts": "1700000004.000100",
        },
        f"slack:{T}:D0ALICEDM:main",
        None,
    ),
    (
        "app_mention carries no channel_type: a D channel is still a DM",
        {"type": "app_mention", "channel": "D0ALICEDM", "ts": "1700000006.000100"},
        f"slack:{T}:D0ALICEDM:main",
        None,
    ),
]


@pytest.mark.parametrize(("case", "event", "key", "reply_thread"), CASES, ids=[c[0] for c in CASES])
def test_session_key_of_each_kind_of_conversation(case, event, key, reply_thread):
    conversation = conversation_of(envelope({**event, "team": T}, team=T))
    assert conversation is not None
    assert conversation.session_key == key
    assert conversation.thread_ts == reply_thread


def test_the_workspace_the_event_was_delivered_to_wins_over_the_senders_team():
    # In a channel shared with another workspace, event.team is the sender's; team_id is the receiving one.
    event = {"type": "app_mention", "channel": "C0SHARED", "ts": "1700000001.000100", "team": "T0OTHER"}
    conversation = conversation_of(envelope(event, team=T))
    assert conversation is not None and conversation.team_id == T


def test_keys_of_different_workspaces_and_channels_never_collide():
    ts = "1700000001.000100"
    keys = {
        Conversation(team, channel, ts, False).session_key
        for team in ("T1", "T12")
        for channel in ("C1", "C12", "C2")
    }
    assert len(keys) == 6


def test_a_dm_prefix_covers_that_dm_only():
    prefix = channel_prefix(T, "D0ALICE")
    assert Conversation(T, "D0ALICE", None, True).session_key.startswith(prefix)
    assert Conversation(T, "D0ALICE", "1.2", True).session_key.startswith(prefix)
    assert not Conversation(T, "D0ALICE2", None, True).session_key.startswith(prefix)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event": "nope"},
        envelope({"type": "message", "ts": "1700000001.000100"}),  # no channel
        envelope({"type": "message", "channel": "C0GENERAL"}),  # no ts
        envelope({"type": "message", "channel": "C0:EVIL", "ts": "1700000001.000100"}),
        envelope({"type": "message", "channel": "C0GENERAL", "ts": "1:2"}),
        envelope({"type": "message", "channel": "C0GENERAL", "ts": "1700000001.000100"}, team="T0:X"),
    ],
)
def test_a_payload_that_names_no_valid_conversation_gives_none(body):
    assert conversation_of(body) is None
