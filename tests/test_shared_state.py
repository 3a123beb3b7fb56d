"""Chat state several replicas share through one real redis-server, and the in-process defaults it replaces.

A "replica" here is a Conversation of its own: two of them over one Redis (chat state and history) behave as
one bot, whichever gets each message.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.redelivery import LocalDedupe
from rag import texts
from rag.participants import MemoryParticipants
from rag.ports import Dedupe, Participants
from rag.sessions import RedisSessionStore
from rag.shared_state import RedisChatState
from rag.types import IncomingMessage
from tests.fakes.conversation import CHANNEL, DM, RecordingConversation, echo, message_in, place_reset
from tests.fakes.embedder import HashingEmbedder
from tests.support import make_core, settings_for


def _replica(
    chat_state: RedisChatState, sessions: RedisSessionStore, *, delay_s: float = 0.0
) -> RecordingConversation:
    return RecordingConversation(
        echo,
        delay_s=delay_s,
        sessions=sessions,
        participants=chat_state.participants(idle_s=3600),
        gate=chat_state.gate(turn_timeout_s=30, idle_s=3600),
    )


@pytest.fixture
def replicas(
    chat_state: RedisChatState, shared_sessions: RedisSessionStore
) -> tuple[RecordingConversation, RecordingConversation]:
    return _replica(chat_state, shared_sessions), _replica(chat_state, shared_sessions)


async def _until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


# ---- contracts: the in-process store and the Redis one answer alike


@pytest.fixture(params=["memory", "redis"])
def dedupe(request: pytest.FixtureRequest) -> Dedupe:
    if request.param == "memory":
        return LocalDedupe()
    state: RedisChatState = request.getfixturevalue("chat_state")
    return state


async def test_seen_keys_drop_a_duplicate_and_keep_names_apart(dedupe: Dedupe) -> None:
    events = dedupe.seen_keys("events", ttl_s=60, max_size=100)
    assert await events.add_if_new("Ev1")
    assert not await events.add_if_new("Ev1")
    assert await dedupe.seen_keys("messages", ttl_s=60, max_size=100).add_if_new("Ev1")


@pytest.fixture(params=["memory", "redis"])
def people(request: pytest.FixtureRequest) -> Participants:
    if request.param == "memory":
        return MemoryParticipants(max_sessions_per_person=3)
    state: RedisChatState = request.getfixturevalue("chat_state")
    return state.participants(idle_s=3600, max_sessions_per_person=3)


async def test_participants_know_whose_threads_they_are_within_a_cap(people: Participants) -> None:
    for n in range(4):
        await people.join(session_key=f"k{n}", place_key="P", user_id="UALICE")
        await asyncio.sleep(0.002)  # Redis orders a person's threads by time
    await people.join(session_key="k9", place_key="P", user_id="UBOB")
    assert await people.follows("k3") and await people.follows("k9")
    assert not await people.follows("nobody")
    assert await people.sessions_of(place_key="P", user_id="UALICE") == ("k1", "k2", "k3")
    await people.forget_person(place_key="P", user_id="UALICE")
    assert await people.sessions_of(place_key="P", user_id="UALICE") == ()
    assert await people.sessions_of(place_key="P", user_id="UBOB") == ("k9",)
    assert await people.follows("k3"), "forgetting a person's threads does not leave them"


async def test_redis_forgets_keys_and_threads_after_their_time(chat_state: RedisChatState) -> None:
    seen = chat_state.seen_keys("events", ttl_s=0.2, max_size=1)
    people = chat_state.participants(idle_s=0.2)
    assert await seen.add_if_new("Ev1")
    await people.join(session_key="k1", place_key="P", user_id="U1")
    await asyncio.sleep(0.4)
    assert await seen.add_if_new("Ev1")
    assert not await people.follows("k1")
    assert await people.sessions_of(place_key="P", user_id="U1") == ()


@pytest.fixture
async def unreachable() -> AsyncIterator[RedisChatState]:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = RedisChatState(f"redis://127.0.0.1:{port}/0")
    yield state
    await state.aclose()


async def test_without_redis_dedupe_answers_and_follows_says_no_quickly(
    unreachable: RedisChatState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rag.shared_state")
    started = time.perf_counter()
    assert await unreachable.seen_keys("events", ttl_s=60, max_size=1).add_if_new("Ev1")
    assert not await unreachable.participants(idle_s=60).follows("k1")
    assert time.perf_counter() - started < 2.5, "a check before Slack's ack must stay quick"
    ours = [r.getMessage() for r in caplog.records if r.name == "rag.shared_state"]
    assert len(ours) == 2 and "handling events as new" in ours[0], "one line per failed check"


async def test_without_redis_a_question_gets_a_short_error(unreachable: RedisChatState) -> None:
    replica = RecordingConversation(echo, gate=unreachable.gate(turn_timeout_s=30, idle_s=60))
    reply = await replica.ask(IncomingMessage("s", "question"))
    assert reply.text == texts.FAILURE


# ---- two replicas over one Redis


async def test_a_thread_one_replica_answered_is_followed_by_the_other(
    replicas: tuple[RecordingConversation, RecordingConversation],
) -> None:
    a, b = replicas
    await a.ask(message_in(CHANNEL, "100.1", "question"))
    assert await b.follows(f"{CHANNEL.key}100.1")
    assert not await b.follows(f"{CHANNEL.key}200.1")


async def test_a_channel_reset_through_one_replica_forgets_threads_only_the_other_answered(
    replicas: tuple[RecordingConversation, RecordingConversation], shared_sessions: RedisSessionStore
) -> None:
    a, b = replicas
    await a.ask(message_in(CHANNEL, "100.1", "alice one", user="UALICE"))
    await a.ask(message_in(CHANNEL, "200.1", "alice two", user="UALICE"))
    await a.ask(message_in(CHANNEL, "300.1", "bob", user="UBOB"))
    reply = await b.ask(place_reset(CHANNEL, user="UALICE"))
    assert reply.text == texts.reset_place_done(2)
    assert reply.text.startswith("Done: I forgot the 2 threads")
    assert shared_sessions.history(f"{CHANNEL.key}100.1") == []
    assert shared_sessions.history(f"{CHANNEL.key}300.1") != []
    assert (await a.ask(place_reset(CHANNEL, user="UALICE"))).text == texts.RESET_PLACE_NOTHING


async def test_follow_ups_on_two_replicas_are_answered_in_order(
    chat_state: RedisChatState, shared_sessions: RedisSessionStore
) -> None:
    a = _replica(chat_state, shared_sessions, delay_s=0.5)
    b = _replica(chat_state, shared_sessions)
    first = asyncio.create_task(a.ask(message_in(CHANNEL, "100.1", "first")))
    await _until(lambda: a.answerer.questions)  # A holds the session's turn, its answer at the model
    second = await b.ask(message_in(CHANNEL, "100.1", "second"))
    assert first.done(), "B answered while A still held the session's turn"
    assert second.text == "second (after: first)"


async def test_a_reset_on_one_replica_voids_the_answer_in_flight_on_the_other(
    chat_state: RedisChatState, shared_sessions: RedisSessionStore
) -> None:
    a = _replica(chat_state, shared_sessions, delay_s=0.5)
    b = _replica(chat_state, shared_sessions)
    session = message_in(CHANNEL, "100.1", "question")
    answering = asyncio.create_task(a.ask(session))
    await _until(lambda: a.answerer.questions)
    started = time.perf_counter()
    reset = await b.ask(IncomingMessage(session.session_key, "reset", place=CHANNEL, threaded=True))
    assert reset.text == texts.RESET_THREAD and time.perf_counter() - started < 0.4, "the reset waited"
    assert (await answering).text == "question (after: nothing)"
    assert shared_sessions.history(session.session_key) == [], "the voided turn was recorded"


async def test_a_direct_message_reset_on_one_replica_voids_the_answer_in_flight_on_the_other(
    chat_state: RedisChatState, shared_sessions: RedisSessionStore
) -> None:
    a = _replica(chat_state, shared_sessions, delay_s=0.5)
    b = _replica(chat_state, shared_sessions)
    question = IncomingMessage(f"{DM.key}", "question", place=DM)
    answering = asyncio.create_task(a.ask(question))
    await _until(lambda: a.answerer.questions)
    await b.ask(place_reset(DM))
    await answering
    assert shared_sessions.history(question.session_key) == [], "the voided turn was recorded"


# ---- composition: REDIS_URL alone makes the cores of two replicas share their chat state


async def test_two_cores_built_on_one_redis_url_share_their_threads(tmp_path: Path, redis_url: str) -> None:
    cores = [
        make_core(settings_for(None, tmp_path / name, redis_url=redis_url), embedder=HashingEmbedder())
        for name in ("a", "b")
    ]
    alone = make_core(settings_for(None, tmp_path / "alone"), embedder=HashingEmbedder())
    thread = f"slack:T1:C1:{uuid.uuid4().hex}"
    try:
        assert alone.chat_state is None
        await cores[0].assistant.ask(IncomingMessage(thread, "question", place=CHANNEL, threaded=True))
        assert await cores[1].assistant.follows(thread)
        assert not await alone.assistant.follows(thread)
    finally:
        for core in [*cores, alone]:
            if core.chat_state is not None:
                await core.chat_state.aclose()
            core.close()
