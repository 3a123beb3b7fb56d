"""One contract every session store passes (SQLite and Redis), then what is specific to each."""

# Fixtures come from tests/fakes by import (no conftest registers them): that import looks unused to ruff.
# ruff: noqa: F401, F811

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from rag.sessions import (
    MAX_SESSION_ID_CHARS,
    RedisSessionStore,
    SessionStoreError,
    SqliteSessionStore,
)
from rag.types import Turn
from tests.fakes.redis_server import redis_url

Store = SqliteSessionStore | RedisSessionStore
# Redis expires keys in real time, so the expiry tests sleep: keep the idle time short.
IDLE_S = 0.5


def pair(question: str, answer: str) -> list[Turn]:
    return [Turn("user", question), Turn("assistant", answer)]


def contents(turns: list[Turn]) -> list[str]:
    return [t.content for t in turns]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """Opens stores of one kind on shared storage (as after a restart) and moves time forward."""

    kind: str
    open_store: Callable[[int, float], Store]
    advance: Callable[[float], None]
    opened: list[Store] = field(default_factory=list)

    def open(self, *, max_turns: int = 10, idle_seconds: float = 3600.0) -> Store:
        store = self.open_store(max_turns, idle_seconds)
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", "redis"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "sqlite":
        clock = FakeClock()
        path = tmp_path / "state" / "sessions.sqlite3"

        def advance_clock(seconds: float) -> None:
            clock.now += seconds

        h = Harness(
            "sqlite",
            lambda turns, idle: SqliteSessionStore(path, max_turns=turns, idle_seconds=idle, clock=clock),
            advance_clock,
        )
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{uuid.uuid4().hex}:"
        h = Harness(
            "redis",
            lambda turns, idle: RedisSessionStore(url, max_turns=turns, idle_seconds=idle, key_prefix=prefix),
            time.sleep,
        )
    yield h
    for store in h.opened:
        store.close()


# The contract


def test_unknown_session_has_no_history(harness: Harness) -> None:
    assert harness.open().history("slack:T1:D1") == []


def test_history_returns_turns_in_the_order_they_were_said(harness: Harness) -> None:
    store = harness.open()
    store.append("s", pair("What is the VPN?", "A tunnel [1]."))
    store.append("s", pair("How do I install it?", "Run the installer [2]."))

    assert store.history("s") == [
        Turn("user", "What is the VPN?"),
        Turn("assistant", "A tunnel [1]."),
        Turn("user", "How do I install it?"),
        Turn("assistant", "Run the installer [2]."),
    ]


def test_history_keeps_only_the_last_max_turns_pairs(harness: Harness) -> None:
    store = harness.open(max_turns=3)
    for i in range(1, 6):
        store.append("s", pair(f"q{i}", f"a{i}"))

    assert contents(store.history("s")) == ["q3", "a3", "q4", "a4", "q5", "a5"]


def test_idle_session_is_forgotten_but_activity_keeps_it(harness: Harness) -> None:
    store = harness.open(idle_seconds=IDLE_S)
    store.append("s", pair("q1", "a1"))
    harness.advance(IDLE_S * 0.6)
    store.append("s", pair("q2", "a2"))
    harness.advance(IDLE_S * 0.6)
    assert contents(store.history("s")) == ["q1", "a1", "q2", "a2"]

    harness.advance(IDLE_S * 1.5)
    assert store.history("s") == []

    store.append("s", pair("q3", "a3"))
    assert contents(store.history("s")) == ["q3", "a3"]


def test_purge_expired_forgets_idle_sessions_only(harness: Harness) -> None:
    store = harness.open(idle_seconds=IDLE_S)
    store.append("old", pair("q", "a"))
    harness.advance(IDLE_S * 0.7)
    store.append("recent", pair("q", "a"))
    harness.advance(IDLE_S * 0.7)

    store.purge_expired()

    assert store.history("old") == []
    assert contents(store.history("recent")) == ["q", "a"]


def test_reset_forgets_only_that_session(harness: Harness) -> None:
    store = harness.open()
    store.append("slack:T1:C1:1700.1", pair("q", "a"))
    store.append("slack:T1:C1:1700.2", pair("other", "kept"))

    store.reset("slack:T1:C1:1700.1")
    store.reset("never-existed")

    assert store.history("slack:T1:C1:1700.1") == []
    assert contents(store.history("slack:T1:C1:1700.2")) == ["other", "kept"]


def test_reset_prefix_matches_literally(harness: Harness) -> None:
    store = harness.open()
    ids = [
        "slack:T1:C%1:u1",
        "slack:T1:C%1:u2",
        "slack:T1:CX1:u1",
        "slack:T1:C_2:u1",
        "slack:T1:CY2:u1",
        "SLACK:T1:C%1:u1",
        "slack:T1:C*3:u1",
        "slack:T1:C[Z]4:u1",
        "slack:T1:CZ4:u1",
        "slack:T1:C\\5:u1",
    ]
    for session_id in ids:
        store.append(session_id, pair("q", session_id))

    assert store.reset_prefix("slack:T1:C%1:") == 2
    assert store.reset_prefix("slack:T1:C_") == 1
    assert store.reset_prefix("slack:T1:C*") == 1
    assert store.reset_prefix("slack:T1:C[Z]") == 1
    assert store.reset_prefix("slack:T1:C\\") == 1
    assert store.reset_prefix("teams:") == 0

    remaining = [i for i in ids if store.history(i)]
    assert remaining == ["slack:T1:CX1:u1", "slack:T1:CY2:u1", "SLACK:T1:C%1:u1", "slack:T1:CZ4:u1"]


def test_history_survives_a_restart(harness: Harness) -> None:
    first = harness.open()
    first.append("teams:19:abc@thread.tacv2;messageid=1", pair("q", "a"))
    first.close()

    second = harness.open()

    assert contents(second.history("teams:19:abc@thread.tacv2;messageid=1")) == ["q", "a"]


def test_concurrent_appends_never_mix_sessions_or_split_pairs(harness: Harness) -> None:
    store = harness.open(max_turns=500)
    per_thread = 15
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def talk(thread: int) -> None:
        session = f"session-{thread % 2}"
        try:
            barrier.wait()
            for i in range(per_thread):
                store.append(session, pair(f"{session}/t{thread}/q{i}", f"{session}/t{thread}/a{i}"))
                store.history(session)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    for session in ("session-0", "session-1"):
        history = store.history(session)
        assert len(history) == 4 * per_thread * 2
        assert all(t.content.startswith(session + "/") for t in history)
        for question, answer in zip(history[::2], history[1::2], strict=True):
            assert question.role == "user"
            assert answer.role == "assistant"
            assert answer.content == question.content.replace("/q", "/a")
        for thread in range(int(session[-1]), 8, 2):
            said = [t.content for t in history if t.content.startswith(f"{session}/t{thread}/q")]
            assert said == [f"{session}/t{thread}/q{i}" for i in range(per_thread)]


def test_session_ids_are_opaque_up_to_512_characters(harness: Harness) -> None:
    store = harness.open()
    longest = "x" * (MAX_SESSION_ID_CHARS - 3) + "é🎉'"
    store.append(longest, pair("q", "a"))
    assert contents(store.history(longest)) == ["q", "a"]

    with pytest.raises(ValueError, match="512"):
        store.history("x" * (MAX_SESSION_ID_CHARS + 1))
    with pytest.raises(ValueError, match="512"):
        store.append("", pair("q", "a"))
    with pytest.raises(ValueError, match="prefix"):
        store.reset_prefix("")


def test_odd_user_text_is_stored_without_crashing(harness: Harness) -> None:
    store = harness.open()
    store.append("s", pair("line one\nline two 🎉 \x00 end", "broken \ud800 surrogate"))

    history = store.history("s")

    assert history[0].content == "line one\nline two 🎉 \x00 end"
    assert history[1].content == "broken ? surrogate"


def test_appending_nothing_changes_nothing(harness: Harness) -> None:
    store = harness.open()
    store.append("s", [])
    assert store.history("s") == []


# SQLite only


def test_sqlite_purge_removes_rows_from_disk(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "sessions.sqlite3"
    store = SqliteSessionStore(path, max_turns=5, idle_seconds=60, clock=clock)
    store.append("old", pair("q", "a"))
    clock.now += 45
    store.append("recent", pair("q", "a"))
    clock.now += 30

    assert store.purge_expired() == 1
    store.close()

    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM turns").fetchone() == (2,)
        assert db.execute("SELECT session_id FROM sessions").fetchall() == [("recent",)]


def test_sqlite_two_stores_on_one_file_do_not_lose_turns(tmp_path: Path) -> None:
    """As two processes (the CLI and the server) sharing one file would."""
    path = tmp_path / "sessions.sqlite3"
    stores = [SqliteSessionStore(path, max_turns=500, idle_seconds=3600) for _ in range(2)]
    errors: list[BaseException] = []

    def talk(thread: int) -> None:
        try:
            for i in range(20):
                stores[thread % 2].append("shared", pair(f"t{thread}/q{i}", f"t{thread}/a{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    history = stores[0].history("shared")
    assert len(history) == 6 * 20 * 2
    assert all(
        a.content == q.content.replace("/q", "/a") for q, a in zip(history[::2], history[1::2], strict=True)
    )
    for store in stores:
        store.close()


def test_sqlite_closed_store_raises_a_store_error(tmp_path: Path) -> None:
    store = SqliteSessionStore(tmp_path / "s.sqlite3", max_turns=5, idle_seconds=60)
    store.close()
    store.close()

    with pytest.raises(SessionStoreError, match="closed"):
        store.history("s")


def test_sqlite_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(SessionStoreError, match="cannot open"):
        SqliteSessionStore(blocker / "sessions.sqlite3", max_turns=5, idle_seconds=60)


# Redis only


def test_redis_keys_are_prefixed_and_expire(redis_url: str) -> None:
    session = f"test-{uuid.uuid4().hex}"
    store = RedisSessionStore(redis_url, max_turns=5, idle_seconds=120)
    client = redis.Redis.from_url(redis_url)
    try:
        store.append(session, pair("q", "a"))

        ttl_ms = int(client.pttl(f"wikibot:session:{session}"))
        assert 110_000 < ttl_ms <= 120_000
    finally:
        store.reset(session)
        store.close()
        client.close()


def test_redis_unreachable_is_a_store_error_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        with pytest.raises(SessionStoreError, match="cannot reach Redis") as raised:
            RedisSessionStore(f"redis://:hunter2@127.0.0.1:{port}/0", max_turns=5, idle_seconds=60)

    assert "hunter2" not in str(raised.value)


def test_redis_bad_url_is_a_store_error_without_the_url() -> None:
    with pytest.raises(SessionStoreError, match="REDIS_URL") as raised:
        RedisSessionStore("http://user:hunter2@example.invalid", max_turns=5, idle_seconds=60)

    assert "hunter2" not in str(raised.value)
