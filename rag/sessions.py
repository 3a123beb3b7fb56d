"""Conversation history per session: SQLite on disk (default) or Redis (several replicas).

Both stores keep the last `max_turns` question/answer pairs of a session and forget a session idle
for longer than `idle_seconds`. Methods are synchronous; the core calls them through
`asyncio.to_thread`, so both stores are safe to use from several threads at once.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from rag.sqlite import connect, write_transaction
from rag.types import Turn

MAX_SESSION_ID_CHARS = 512
REDIS_KEY_PREFIX = "wikibot:session:"
_ROLES = frozenset({"user", "assistant"})
_BUSY_TIMEOUT_MS = 10_000
_REDIS_TIMEOUT_S = 5.0
_SCAN_BATCH = 500


class SessionStoreError(Exception):
    """The store's backend failed (disk, lock, network). str() is one short line without secrets."""


def _checked_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID_CHARS:
        raise ValueError(f"session id must be 1 to {MAX_SESSION_ID_CHARS} characters")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("session id is not valid Unicode text") from None
    return session_id


def _checked_prefix(prefix: str) -> str:
    # An empty prefix would wipe every session of every workspace: never what a caller means.
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("session prefix must not be empty")
    if len(prefix) > MAX_SESSION_ID_CHARS:
        raise ValueError(f"session prefix must be at most {MAX_SESSION_ID_CHARS} characters")
    return _checked_id(prefix)


def _clean_text(text: str) -> str:
    """User text may hold lone surrogates (from JSON escapes), which neither SQLite nor UTF-8 accept."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _checked_turns(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for turn in turns:
        if turn.role not in _ROLES:
            raise ValueError(f"turn role must be 'user' or 'assistant', not {turn.role!r}")
        rows.append((turn.role, _clean_text(turn.content)))
    return rows


def _checked_limits(max_turns: int, idle_seconds: float) -> None:
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    if not idle_seconds > 0:
        raise ValueError("idle_seconds must be positive")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    last_active REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS turns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, seq);
CREATE INDEX IF NOT EXISTS sessions_by_activity ON sessions (last_active);
"""


class SqliteSessionStore:
    """Sessions in one SQLite file: survives restarts, shared safely by threads and processes (WAL)."""

    def __init__(
        self,
        path: Path,
        *,
        max_turns: int,
        idle_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _checked_limits(max_turns, idle_seconds)
        self._max_rows = 2 * max_turns
        self._idle_seconds = idle_seconds
        self._clock = clock
        # One connection behind a lock: SQLite serialises writers anyway, and per-thread connections
        # would leak with asyncio.to_thread's pool, whose threads we never see end.
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = connect(
                path, busy_timeout_s=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise SessionStoreError(f"cannot open the session database {path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise SessionStoreError("the session store is closed")
            db = self._db
            try:
                with write_transaction(db):
                    yield db
            except sqlite3.Error as exc:
                raise SessionStoreError(f"session database error: {exc}") from exc

    def _expired(self, last_active: float, now: float) -> bool:
        return now - last_active > self._idle_seconds

    @staticmethod
    def _delete(db: sqlite3.Connection, session_id: str) -> None:
        db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
        db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    def history(self, session_id: str) -> list[Turn]:
        _checked_id(session_id)
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT last_active FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return []
            if self._expired(row[0], now):
                self._delete(db, session_id)
                return []
            rows = db.execute(
                "SELECT role, content FROM turns WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        return [Turn(role=role, content=content) for role, content in rows]

    def append(self, session_id: str, turns: Sequence[Turn]) -> None:
        _checked_id(session_id)
        rows = _checked_turns(turns)
        if not rows:
            return
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT last_active FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is not None and self._expired(row[0], now):
                # An expired conversation must not come back because a new question arrived.
                self._delete(db, session_id)
            db.execute(
                "INSERT INTO sessions (session_id, last_active) VALUES (?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET last_active = excluded.last_active",
                (session_id, now),
            )
            db.executemany(
                "INSERT INTO turns (session_id, role, content) VALUES (?, ?, ?)",
                [(session_id, role, content) for role, content in rows],
            )
            db.execute(
                "DELETE FROM turns WHERE session_id = ? AND seq NOT IN "
                "(SELECT seq FROM turns WHERE session_id = ? ORDER BY seq DESC LIMIT ?)",
                (session_id, session_id, self._max_rows),
            )

    def reset(self, session_id: str) -> None:
        _checked_id(session_id)
        with self._transaction() as db:
            self._delete(db, session_id)

    def reset_prefix(self, prefix: str) -> int:
        """Forgets every session whose id starts with `prefix` (case-sensitive, no wildcards)."""
        _checked_prefix(prefix)
        # substr(), not LIKE: LIKE treats % and _ as wildcards and ignores ASCII case.
        match = "substr(session_id, 1, ?) = ?"
        args = (len(prefix), prefix)
        with self._transaction() as db:
            db.execute(f"DELETE FROM turns WHERE {match}", args)  # noqa: S608 (constant SQL)
            return db.execute(f"DELETE FROM sessions WHERE {match}", args).rowcount  # noqa: S608

    def purge_expired(self) -> int:
        """Deletes every idle session; returns how many. History reads also purge lazily."""
        cutoff = self._clock() - self._idle_seconds
        with self._transaction() as db:
            db.execute(
                "DELETE FROM turns WHERE session_id IN (SELECT session_id FROM sessions WHERE last_active < ?)",
                (cutoff,),
            )
            return db.execute("DELETE FROM sessions WHERE last_active < ?", (cutoff,)).rowcount

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def glob_escape(text: str) -> str:
    """Makes `text` literal in a Redis MATCH pattern."""
    return "".join("\\" + ch if ch in "\\*?[]^-" else ch for ch in text)


class RedisSessionStore:
    """Sessions in Redis, one list per session: LTRIM bounds it, an expiry forgets it when idle."""

    def __init__(
        self,
        url: str,
        *,
        max_turns: int,
        idle_seconds: float,
        key_prefix: str = REDIS_KEY_PREFIX,
    ) -> None:
        _checked_limits(max_turns, idle_seconds)
        self._max_rows = 2 * max_turns
        self._idle_ms = max(1, math.ceil(idle_seconds * 1000))
        self._key_prefix = key_prefix
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=_REDIS_TIMEOUT_S,
                socket_connect_timeout=_REDIS_TIMEOUT_S,
                health_check_interval=30,
            )
        except ValueError:
            # The message of a bad URL must not repeat it: it may hold the password.
            raise SessionStoreError("REDIS_URL is not a valid redis://, rediss:// or unix:// URL") from None
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._client.close()
            raise SessionStoreError(f"cannot reach Redis for sessions: {type(exc).__name__}") from None

    def _key(self, session_id: str) -> str:
        return self._key_prefix + _checked_id(session_id)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise SessionStoreError(f"Redis session store failed: {type(exc).__name__}") from exc

    def history(self, session_id: str) -> list[Turn]:
        key = self._key(session_id)
        with self._errors():
            items: list[str] = self._client.lrange(key, 0, -1)  # type: ignore[assignment]
        return [turn for turn in map(_decode_turn, items) if turn is not None]

    def append(self, session_id: str, turns: Sequence[Turn]) -> None:
        key = self._key(session_id)
        rows = _checked_turns(turns)
        if not rows:
            return
        items = [json.dumps({"role": role, "content": content}) for role, content in rows]
        with self._errors():
            # MULTI/EXEC: a reader never sees the pushed turns without the trim, and pairs stay together.
            pipe = self._client.pipeline(transaction=True)
            pipe.rpush(key, *items)
            pipe.ltrim(key, -self._max_rows, -1)
            pipe.pexpire(key, self._idle_ms)
            pipe.execute()

    def reset(self, session_id: str) -> None:
        key = self._key(session_id)
        with self._errors():
            self._client.delete(key)

    def reset_prefix(self, prefix: str) -> int:
        """Forgets every session whose id starts with `prefix` (case-sensitive, no wildcards)."""
        full = self._key_prefix + _checked_prefix(prefix)
        deleted = 0
        with self._errors():
            batch: list[str] = []
            # SCAN, never KEYS: KEYS blocks Redis for every other client while it walks the keyspace.
            for key in self._client.scan_iter(match=glob_escape(full) + "*", count=_SCAN_BATCH):
                if isinstance(key, str) and key.startswith(full):
                    batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    deleted += int(self._client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(self._client.unlink(*batch))
        return deleted

    def purge_expired(self) -> int:
        """Redis expires idle sessions itself: nothing left to purge."""
        return 0

    def close(self) -> None:
        self._client.close()


def _decode_turn(item: Any) -> Turn | None:
    """A stored turn, or None for an entry this version cannot read (skipped rather than fatal)."""
    try:
        data = json.loads(item)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    role, content = data.get("role"), data.get("content")
    if role not in _ROLES or not isinstance(content, str):
        return None
    return Turn(role=role, content=content)
