"""The question log as a wiki owner relies on it: every question kept with how it ended, 👍/👎 attached to
the right answer, askers never stored, old entries forgotten; the same on SQLite and on a real Redis."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from bot.app import Core
from rag.question_log import QuestionLogError, RedisQuestionLog, SqliteQuestionLog
from rag.types import Feedback, IncomingMessage, LoggedQuestion, Outcome, Rating, ReplyKind, Source
from tests.fakes.redis_server import unique_prefix
from tests.support import make_core, settings_for

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "redis"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    logs: list[SqliteQuestionLog | RedisQuestionLog] = []

    def make(
        *, retention_days: float = 90, clock: Clock | None = None
    ) -> SqliteQuestionLog | RedisQuestionLog:
        kwargs = {"clock": clock} if clock else {}
        if request.param == "sqlite":
            log: SqliteQuestionLog | RedisQuestionLog = SqliteQuestionLog(
                tmp_path / "questions.sqlite3", retention_days=retention_days, **kwargs
            )
        else:
            url = request.getfixturevalue("redis_url")
            log = RedisQuestionLog(
                redis.Redis.from_url(url), retention_days=retention_days, prefix=unique_prefix(), **kwargs
            )
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()


def _entry(
    answer_id: str, *, asked_at: datetime | None = None, question: str = "How do I reset MFA?"
) -> LoggedQuestion:
    return LoggedQuestion(
        answer_id=answer_id,
        asked_at=asked_at or datetime.now(UTC),
        question=question,
        outcome=Outcome.ANSWERED,
        platform="slack",
        language="en",
        answer="Use the portal [1].",
        sources=(Source("42", "MFA", "https://wiki/42", version=7, space="IT"),),
        spaces=("IT",),
    )


def test_an_entry_comes_back_whole_with_its_ratings(make_log) -> None:  # type: ignore[no-untyped-def]
    log = make_log()
    log.record(_entry("a1"), user_id="U123")
    assert log.rate(Feedback("a1", Rating.DOWN, user_id="U9", platform="slack", comment="outdated"))
    assert log.rate(Feedback("a1", Rating.UP, user_id="U8", platform="slack"))
    # One rating per person: changing one's mind replaces it.
    assert log.rate(Feedback("a1", Rating.DOWN, user_id="U8", platform="slack"))
    [entry] = log.entries(since=_LONG_AGO)
    assert (entry.question, entry.outcome, entry.language) == ("How do I reset MFA?", Outcome.ANSWERED, "en")
    assert entry.sources[0].version == 7 and entry.sources[0].space == "IT"
    assert (entry.up, entry.down, entry.comments) == (0, 2, ("outdated",))
    assert entry.asker and "U123" not in entry.asker


def test_a_rating_for_an_unknown_answer_is_refused(make_log) -> None:  # type: ignore[no-untyped-def]
    log = make_log()
    assert not log.rate(Feedback("nope", Rating.UP, user_id="U1"))
    assert not log.rate(Feedback("", Rating.UP, user_id="U1", message_ref="teams:c:unknown"))


def test_a_platform_message_id_names_its_answer(make_log) -> None:  # type: ignore[no-untyped-def]
    log = make_log()
    log.record(_entry("a1"))
    log.link("a1", "teams:19:abc:1712")
    assert log.rate(
        Feedback("", Rating.UP, user_id="aad-1", platform="teams", message_ref="teams:19:abc:1712")
    )
    assert log.entries(since=_LONG_AGO)[0].up == 1


def test_the_same_person_hashes_alike_and_is_never_stored(make_log, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = make_log()
    log.record(_entry("a1"), user_id="U123")
    log.record(_entry("a2"), user_id="U123")
    log.record(_entry("a3"), user_id="U456")
    askers = [e.asker for e in log.entries(since=_LONG_AGO)]
    assert askers[0] == askers[1] != askers[2]
    database = tmp_path / "questions.sqlite3"
    if database.exists():
        dump = "\n".join(sqlite3.connect(database).iterdump())
        assert "U123" not in dump and "U456" not in dump


def test_entries_past_the_retention_are_forgotten(make_log) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    log = make_log(retention_days=30, clock=clock)
    log.record(_entry("old", asked_at=datetime.fromtimestamp(clock.now, UTC) - timedelta(days=31)))
    log.record(_entry("new"))
    log.purge_expired()
    assert [e.answer_id for e in log.entries(since=_LONG_AGO)] == ["new"]


def test_entries_since_a_date_are_oldest_first(make_log) -> None:  # type: ignore[no-untyped-def]
    log = make_log()
    now = datetime.now(UTC)
    log.record(_entry("b", asked_at=now - timedelta(days=2)))
    log.record(_entry("a", asked_at=now - timedelta(days=5)))
    log.record(_entry("c", asked_at=now - timedelta(hours=1)))
    assert [e.answer_id for e in log.entries(since=now - timedelta(days=3))] == ["b", "c"]


def test_a_log_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(QuestionLogError, match="question log"):
        SqliteQuestionLog(tmp_path / "file" / "questions.sqlite3", retention_days=90)


# ---- through the core: what a channel's question leaves in the log


async def test_a_question_is_logged_and_its_answer_can_be_rated(core: Core) -> None:
    assert core.sync().ok
    reply = await core.assistant.ask(
        IncomingMessage(
            session_key="slack:T1:C1:1.0", text="How do I connect to the VPN?", user_id="U1", platform="slack"
        )
    )
    assert reply.kind is ReplyKind.ANSWER and reply.answer_id
    assert await core.assistant.feedback(
        Feedback(reply.answer_id, Rating.DOWN, user_id="U2", platform="slack")
    )
    assert core.questions is not None
    [entry] = core.questions.entries(since=_LONG_AGO)
    assert entry.question == "How do I connect to the VPN?"
    assert entry.outcome is Outcome.ANSWERED and entry.platform == "slack" and entry.down == 1
    assert entry.sources and entry.sources[0].version >= 1 and entry.spaces


async def test_commands_are_not_logged_and_refusals_are(core: Core) -> None:
    assert core.sync().ok
    await core.assistant.ask(IncomingMessage(session_key="s", text="reset"))
    await core.assistant.ask(IncomingMessage(session_key="s", text="help"))
    refused = await core.assistant.ask(IncomingMessage(session_key="s", text="x" * 5000))
    assert refused.kind is ReplyKind.NOTICE and not refused.answer_id
    assert core.questions is not None
    assert [e.outcome for e in core.questions.entries(since=_LONG_AGO)] == [Outcome.REFUSED]


async def test_a_question_the_wiki_cannot_answer_is_logged_as_not_found(core: Core) -> None:
    assert core.sync().ok
    reply = await core.assistant.ask(IncomingMessage(session_key="s", text="zqxv wlorp frimble?"))
    assert not reply.grounded
    assert core.questions is not None
    [entry] = core.questions.entries(since=_LONG_AGO)
    assert entry.outcome is Outcome.NOT_FOUND and entry.sources == ()


async def test_with_the_log_off_nothing_is_kept_and_nothing_can_be_rated(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.embedder import HashingEmbedder

    core = make_core(
        settings_for(fake, tmp_path / "data", question_log_enabled=False), embedder=HashingEmbedder()
    )
    try:
        assert core.sync().ok
        reply = await core.assistant.ask(
            IncomingMessage(session_key="s", text="How do I connect to the VPN?")
        )
        assert reply.kind is ReplyKind.ANSWER and reply.answer_id == ""
        assert not await core.assistant.feedback(Feedback("anything", Rating.UP))
        assert core.questions is None
        assert not (tmp_path / "data" / "questions.sqlite3").exists()
    finally:
        core.close()


async def test_suggestions_are_the_pages_answers_cite_most(core: Core) -> None:
    assert core.sync().ok
    assert await core.assistant.suggestions() == ()
    for _ in range(2):
        await core.assistant.ask(IncomingMessage(session_key="s", text="How do I connect to the VPN?"))
    suggestions = await core.assistant.suggestions(limit=4)
    assert 1 <= len(suggestions) <= 4
    assert all(s.message.startswith("What does the wiki say about") for s in suggestions)


async def test_a_click_named_by_its_platform_message_rates_the_answer(core: Core) -> None:
    assert core.sync().ok
    reply = await core.assistant.ask(IncomingMessage(session_key="t", text="How do I connect to the VPN?"))
    await core.assistant.delivered(reply.answer_id, "teams:19:chat:activity-7")
    click = Feedback("", Rating.UP, user_id="aad-1", platform="teams", message_ref="teams:19:chat:activity-7")
    assert await core.assistant.feedback(click)
    assert not await core.assistant.feedback(
        Feedback("", Rating.UP, user_id="aad-1", platform="teams", message_ref="teams:19:chat:other")
    )
    assert core.questions is not None
    assert core.questions.entries(since=_LONG_AGO)[0].up == 1
