"""The conversation's rules, shared by every channel: commands, turn order, resets, timeouts, failures."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from adapters.redelivery import RecentKeys
from rag import texts
from rag.participants import MemoryParticipants
from rag.sessions import SessionStoreError
from rag.types import IncomingMessage, ReplyKind, Scope, Turn
from tests.fakes.conversation import CHANNEL, DM, RecordingConversation, echo, message_in, place_reset


async def test_a_reset_does_not_wait_for_the_answer_in_flight_and_voids_its_turn() -> None:
    conversation = RecordingConversation(echo, delay_s=1.0)
    slow = asyncio.create_task(conversation.ask(IncomingMessage("s", "first question")))
    await asyncio.sleep(0.1)
    started = time.perf_counter()
    reset = await conversation.ask(IncomingMessage("s", "reset"))
    assert time.perf_counter() - started < 0.5 and reset.text == texts.RESET_SESSION
    assert (await slow).text.startswith("first question"), "the answer in flight is still delivered"
    conversation.delay_s = 0
    follow_up = await conversation.ask(IncomingMessage("s", "second question"))
    assert follow_up.text == "second question (after: nothing)"


async def test_questions_of_one_session_wait_their_turn_and_see_the_answer_before() -> None:
    conversation = RecordingConversation(echo, delay_s=0.2)
    _, second = await asyncio.gather(
        conversation.ask(IncomingMessage("s", "one")), conversation.ask(IncomingMessage("s", "two"))
    )
    assert second.text == "two (after: one)"


async def test_a_slow_reset_says_so_in_time_and_still_completes() -> None:
    conversation = RecordingConversation(echo, reset_delay_s=0.6, reset_timeout_s=0.1)
    await conversation.ask(message_in(DM, "main", "question"))
    started = time.perf_counter()
    reply = await conversation.ask(place_reset(DM))
    assert reply.text == texts.RESET_SLOW and time.perf_counter() - started < 0.4
    await conversation.close()
    assert conversation.sessions.turns == {}


async def test_a_reset_of_a_channel_forgets_only_the_callers_threads_there() -> None:
    conversation = RecordingConversation(echo)
    await conversation.ask(message_in(CHANNEL, "100.1", "alice one", user="UALICE"))
    await conversation.ask(message_in(CHANNEL, "200.1", "alice two", user="UALICE"))
    await conversation.ask(message_in(CHANNEL, "300.1", "bob", user="UBOB"))
    reply = await conversation.ask(place_reset(CHANNEL, user="UALICE"))
    assert reply.text == texts.reset_place_done(2)
    assert set(conversation.sessions.turns) == {f"{CHANNEL.key}300.1"}
    assert await conversation.follows(f"{CHANNEL.key}100.1"), "the bot still follows the thread after a reset"
    again = await conversation.ask(place_reset(CHANNEL, user="UALICE"))
    assert again.text == texts.RESET_PLACE_NOTHING


async def test_a_reset_of_a_direct_message_forgets_all_its_threads() -> None:
    conversation = RecordingConversation(echo)
    await conversation.ask(message_in(DM, "main", "top"))
    await conversation.ask(message_in(DM, "100.1", "in a thread"))
    assert (await conversation.ask(place_reset(DM))).text == texts.RESET_PRIVATE_DONE
    assert conversation.sessions.turns == {}
    assert (await conversation.ask(place_reset(DM))).text == texts.RESET_PRIVATE_NOTHING


async def test_a_place_reset_without_a_place_or_a_user_says_it_cannot_tell() -> None:
    conversation = RecordingConversation(echo)
    nowhere = IncomingMessage(session_key="", text="reset", scope=Scope.PLACE)
    assert (await conversation.ask(nowhere)).text == texts.RESET_NO_PLACE
    assert (await conversation.ask(place_reset(CHANNEL, user=""))).text == texts.RESET_NO_PLACE


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (IncomingMessage("s", "help"), texts.HELP),
        (IncomingMessage("s", "  "), texts.HELP),
        (IncomingMessage("s", "", has_files=True), texts.FILE_ONLY),
        (IncomingMessage("s", "x" * 2001), texts.too_long(2001, 2000)),
        (IncomingMessage("", "what is this?", place=CHANNEL, scope=Scope.PLACE), texts.HELP),
    ],
)
async def test_what_is_not_a_question_gets_a_notice_and_never_reaches_the_answerer(
    message: IncomingMessage, expected: str
) -> None:
    conversation = RecordingConversation(echo)
    reply = await conversation.ask(message)
    assert reply.text == expected and reply.kind is ReplyKind.NOTICE
    assert conversation.answerer.questions == [] and conversation.sessions.turns == {}


async def test_an_answer_past_the_deadline_is_a_timeout_and_leaves_no_turn() -> None:
    conversation = RecordingConversation(echo, delay_s=5, answer_timeout_s=0.2)
    reply = await conversation.ask(IncomingMessage("s", "anything"))
    assert reply.text == texts.TIMEOUT and reply.kind is ReplyKind.ERROR
    assert conversation.sessions.turns == {}


async def test_a_bug_in_the_answerer_is_a_short_message_and_a_traceback_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation = RecordingConversation(echo, error=KeyError("chunk_id"))
    with caplog.at_level(logging.ERROR):
        reply = await conversation.ask(IncomingMessage("s", "anything"))
    assert reply.text == texts.FAILURE and "chunk_id" not in reply.text
    assert any(record.exc_info for record in caplog.records), "a bug must reach the log with its traceback"


async def test_an_answer_is_delivered_even_when_its_turn_cannot_be_recorded() -> None:
    conversation = RecordingConversation(echo)

    def broken(session_id: str, turns: list[Turn]) -> None:
        raise SessionStoreError("disk I/O error")

    conversation.sessions.append = broken  # type: ignore[method-assign]
    reply = await conversation.ask(IncomingMessage("s", "question"))
    assert reply.text == "question (after: nothing)" and reply.kind is ReplyKind.ANSWER


async def test_answers_beyond_the_concurrency_cap_wait_for_a_free_slot() -> None:
    conversation = RecordingConversation(echo, delay_s=0.3, max_concurrent_answers=1)
    started = time.perf_counter()
    await asyncio.gather(*(conversation.ask(IncomingMessage(f"s{n}", "q")) for n in range(2)))
    assert time.perf_counter() - started >= 0.55


async def test_recent_keys_drop_duplicates_and_forget_after_the_ttl() -> None:
    now = [0.0]
    keys = RecentKeys(ttl_s=60, max_size=100, clock=lambda: now[0])
    assert await keys.add_if_new("Ev1")
    assert not await keys.add_if_new("Ev1")
    now[0] = 61
    assert "Ev1" not in keys
    assert await keys.add_if_new("Ev1")


async def test_recent_keys_stay_bounded_evicting_the_oldest() -> None:
    keys = RecentKeys(ttl_s=3600, max_size=3, clock=lambda: 0.0)
    for n in range(10):
        await keys.add_if_new(f"Ev{n}")
    assert len(keys) == 3
    assert "Ev9" in keys and "Ev0" not in keys


async def test_participants_are_bounded_and_per_person() -> None:
    people = MemoryParticipants(max_sessions=2, max_people=10, max_sessions_per_person=10)
    for n in range(3):
        await people.join(session_key=f"k{n}", place_key="P", user_id="UALICE")
    await people.join(session_key="k9", place_key="P", user_id="UBOB")
    assert not await people.follows("k0") and not await people.follows("k1")
    assert await people.follows("k2") and await people.follows("k9")
    assert await people.sessions_of(place_key="P", user_id="UALICE") == ("k0", "k1", "k2")
    await people.forget_person(place_key="P", user_id="UALICE")
    assert await people.sessions_of(place_key="P", user_id="UALICE") == ()
    assert await people.sessions_of(place_key="P", user_id="UBOB") == ("k9",)
