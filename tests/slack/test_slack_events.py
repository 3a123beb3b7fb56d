"""Which events are messages for the bot (a pure reading), and the bounded memory behind the dedupe."""

from __future__ import annotations

import pytest

from adapters.slack.events import read_message
from adapters.slack.memory import KeyedLocks, RecentKeys, ThreadMemory

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


def test_recent_keys_drop_duplicates_and_forget_after_the_ttl():
    now = [0.0]
    keys = RecentKeys(ttl_s=60, max_size=100, clock=lambda: now[0])
    assert keys.add_if_new("Ev1")
    assert not keys.add_if_new("Ev1")
    now[0] = 61
    assert "Ev1" not in keys
    assert keys.add_if_new("Ev1")


def test_recent_keys_stay_bounded_evicting_the_oldest():
    keys = RecentKeys(ttl_s=3600, max_size=3, clock=lambda: 0.0)
    for n in range(10):
        keys.add_if_new(f"Ev{n}")
    assert len(keys) == 3
    assert "Ev9" in keys and "Ev0" not in keys


def test_thread_memory_is_bounded_and_per_person():
    memory = ThreadMemory(max_threads=2, max_people=10, max_threads_per_person=10)
    for n in range(3):
        memory.remember(session_key=f"k{n}", team_id="T", channel_id="C", user_id=ALICE)
    memory.remember(session_key="k9", team_id="T", channel_id="C", user_id=BOB)
    assert not memory.is_known("k0") and not memory.is_known("k1")
    assert memory.is_known("k2") and memory.is_known("k9")
    assert memory.threads_of(team_id="T", channel_id="C", user_id=ALICE) == ("k0", "k1", "k2")
    memory.forget_person(team_id="T", channel_id="C", user_id=ALICE)
    assert memory.threads_of(team_id="T", channel_id="C", user_id=ALICE) == ()
    assert memory.threads_of(team_id="T", channel_id="C", user_id=BOB) == ("k9",)


async def test_keyed_locks_serialise_one_key_and_keep_nothing_afterwards():
    import asyncio

    locks = KeyedLocks()
    order: list[str] = []

    async def turn(key: str, name: str, delay: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(delay)
            order.append(f"{name}-")

    await asyncio.gather(turn("a", "a1", 0.05), turn("a", "a2", 0), turn("b", "b1", 0))
    assert order.index("a1-") < order.index("a2+")  # same key: one after the other
    assert order.index("b1+") < order.index("a1-")  # other key: not held up
    assert len(locks) == 0
