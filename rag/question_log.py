"""The question log: what was asked, how it ended, how people rated it (rag.ports.QuestionLog).

SQLite in the data folder on one machine, Redis when replicas share state. Who asked is kept only as a
keyed hash (HMAC-SHA256 with a salt the log keeps beside its entries): the same person asking twice is
the same hash, and nobody can go from the hash back to the person without the salt. Entries older than
the retention are purged; nothing else ever leaves the log but through the report.

Methods are synchronous; the core calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.sqlite import connect, write_transaction
from rag.types import Feedback, LoggedQuestion, Outcome, Rating, Source

# What one entry keeps at most: a question is bounded by MAX_QUESTION_CHARS already, an answer is not.
MAX_ANSWER_CHARS = 4000
MAX_COMMENT_CHARS = 1000
_BUSY_TIMEOUT_S = 10.0
_REDIS_TIMEOUT_S = 5.0
_BATCH = 500
_MAX_REF_CHARS = 512


class QuestionLogError(Exception):
    """The log's backend failed (disk, lock, network). str() is one short line without secrets."""


def asker_hash(salt: bytes, platform: str, user_id: str) -> str:
    """The same person on the same platform gives the same hash; "" when the platform named nobody."""
    if not user_id:
        return ""
    return hmac.new(salt, f"{platform}\n{user_id}".encode(), hashlib.sha256).hexdigest()[:24]


def _clean(text: str, limit: int) -> str:
    # User text may hold lone surrogates (from JSON escapes), which neither SQLite nor UTF-8 accept.
    return text[:limit].encode("utf-8", "replace").decode("utf-8")


def _sources_json(sources: Sequence[Source]) -> str:
    return json.dumps(
        [
            {"page_id": s.page_id, "title": s.title, "url": s.url, "version": s.version, "space": s.space}
            for s in sources
        ]
    )


def _sources_of(raw: str) -> tuple[Source, ...]:
    try:
        items = json.loads(raw)
    except ValueError:
        return ()
    sources = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            sources.append(
                Source(
                    str(item.get("page_id", "")),
                    str(item.get("title", "")),
                    str(item.get("url", "")),
                    version=int(item.get("version", 0) or 0),
                    space=str(item.get("space", "")),
                )
            )
    return tuple(sources)


def _as_record(entry: LoggedQuestion, asker: str) -> dict[str, Any]:
    return {
        "answer_id": entry.answer_id,
        "asked_at": entry.asked_at.timestamp(),
        "question": _clean(entry.question, MAX_ANSWER_CHARS),
        "outcome": entry.outcome.value,
        "platform": entry.platform[:40],
        "asker": asker,
        "language": entry.language[:8],
        "answer": _clean(entry.answer, MAX_ANSWER_CHARS),
        "sources": _sources_json(entry.sources),
        "spaces": json.dumps(list(entry.spaces)),
    }


def _from_record(row: dict[str, Any], ratings: Sequence[tuple[str, str]]) -> LoggedQuestion | None:
    """An entry as stored, with its (rating, comment) pairs; None for a record another version wrote."""
    try:
        outcome = Outcome(row["outcome"])
        spaces = json.loads(row.get("spaces") or "[]")
        return LoggedQuestion(
            answer_id=str(row["answer_id"]),
            asked_at=datetime.fromtimestamp(float(row["asked_at"]), UTC),
            question=str(row["question"]),
            outcome=outcome,
            platform=str(row.get("platform", "")),
            asker=str(row.get("asker", "")),
            language=str(row.get("language", "")),
            answer=str(row.get("answer", "")),
            sources=_sources_of(str(row.get("sources") or "[]")),
            spaces=tuple(str(s) for s in spaces) if isinstance(spaces, list) else (),
            up=sum(1 for rating, _ in ratings if rating == Rating.UP.value),
            down=sum(1 for rating, _ in ratings if rating == Rating.DOWN.value),
            comments=tuple(comment for _, comment in ratings if comment),
        )
    except (KeyError, ValueError, TypeError):
        return None


def _checked_retention(retention_days: float) -> float:
    if not retention_days > 0:
        raise ValueError("the question log's retention must be positive")
    return retention_days * 86_400.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    answer_id TEXT PRIMARY KEY,
    asked_at REAL NOT NULL,
    question TEXT NOT NULL,
    outcome TEXT NOT NULL,
    platform TEXT NOT NULL,
    asker TEXT NOT NULL,
    language TEXT NOT NULL,
    answer TEXT NOT NULL,
    sources TEXT NOT NULL,
    spaces TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS questions_by_time ON questions (asked_at);
CREATE TABLE IF NOT EXISTS ratings (
    answer_id TEXT NOT NULL REFERENCES questions (answer_id) ON DELETE CASCADE,
    rater TEXT NOT NULL,
    rating TEXT NOT NULL,
    comment TEXT NOT NULL,
    rated_at REAL NOT NULL,
    PRIMARY KEY (answer_id, rater)
);
CREATE TABLE IF NOT EXISTS message_refs (
    message_ref TEXT PRIMARY KEY,
    answer_id TEXT NOT NULL REFERENCES questions (answer_id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = (
    *("answer_id", "asked_at", "question", "outcome", "platform"),
    *("asker", "language", "answer", "sources", "spaces"),
)
# Built once from the constant column names above: no value ever goes into the SQL text.
_INSERT = (
    f"INSERT OR REPLACE INTO questions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"  # noqa: S608
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM questions WHERE asked_at >= ? ORDER BY asked_at"  # noqa: S608


class SqliteQuestionLog:
    """The log in one SQLite file (WAL): one connection per thread, writes in short transactions."""

    def __init__(self, path: Path, *, retention_days: float, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._retention_s = _checked_retention(retention_days)
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db, write_transaction(db):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)", (secrets.token_hex(32),)
                )
                row = db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise QuestionLogError(f"cannot open the question log at {path}: {exc}") from None
        self._salt = bytes.fromhex(row[0])

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # Used only by its own thread; closed by whichever thread closes the log.
            db = connect(self._path, busy_timeout_s=_BUSY_TIMEOUT_S, check_same_thread=False)
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._guard:
                self._connections.append(db)
        try:
            yield db
        except sqlite3.Error as exc:
            raise QuestionLogError(f"the question log failed: {exc}") from None

    def record(self, entry: LoggedQuestion, *, user_id: str = "") -> None:
        record = _as_record(entry, asker_hash(self._salt, entry.platform, user_id))
        with self._db() as db:
            db.execute(_INSERT, [record[c] for c in _COLUMNS])

    def link(self, answer_id: str, message_ref: str) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO message_refs (message_ref, answer_id) "
                "SELECT ?, answer_id FROM questions WHERE answer_id = ?",
                (message_ref[:_MAX_REF_CHARS], answer_id),
            )

    def rate(self, feedback: Feedback) -> bool:
        rater = asker_hash(self._salt, feedback.platform, feedback.user_id) or "anonymous"
        with self._db() as db, write_transaction(db):
            if feedback.answer_id:
                found = db.execute(
                    "SELECT answer_id FROM questions WHERE answer_id = ?", (feedback.answer_id,)
                ).fetchone()
            else:
                found = db.execute(
                    "SELECT answer_id FROM message_refs WHERE message_ref = ?", (feedback.message_ref,)
                ).fetchone()
            if found is None:
                return False
            db.execute(
                "INSERT OR REPLACE INTO ratings (answer_id, rater, rating, comment, rated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    found[0],
                    rater,
                    feedback.rating.value,
                    _clean(feedback.comment, MAX_COMMENT_CHARS),
                    self._clock(),
                ),
            )
        return True

    def entries(self, *, since: datetime) -> list[LoggedQuestion]:
        with self._db() as db:
            rows = db.execute(_SELECT, (since.timestamp(),)).fetchall()
            ratings: dict[str, list[tuple[str, str]]] = {}
            for answer_id, rating, comment in db.execute(
                "SELECT r.answer_id, r.rating, r.comment FROM ratings r "
                "JOIN questions q ON q.answer_id = r.answer_id WHERE q.asked_at >= ? ORDER BY r.rated_at",
                (since.timestamp(),),
            ):
                ratings.setdefault(answer_id, []).append((rating, comment))
        entries = (
            _from_record(dict(zip(_COLUMNS, row, strict=True)), ratings.get(row[0], [])) for row in rows
        )
        return [entry for entry in entries if entry is not None]

    def purge_expired(self) -> int:
        cutoff = self._clock() - self._retention_s
        with self._db() as db:
            return db.execute("DELETE FROM questions WHERE asked_at < ?", (cutoff,)).rowcount

    def close(self) -> None:
        with self._guard:
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()


class RedisQuestionLog:
    """The log in Redis, shared by replicas: one JSON string per entry and a hash of its ratings, both
    expiring with the retention, and a sorted set of entry ids by time for the report."""

    def __init__(
        self,
        client: Any,
        *,
        retention_days: float,
        prefix: str = "wikibot:questions",
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis

        self._redis = client
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._retention_s = _checked_retention(retention_days)
        self._prefix = prefix
        self._clock = clock
        self._by_time = f"{prefix}:by-time"
        with self._guarded():
            # The first replica to start draws the salt; every other one reads the same.
            client.set(f"{prefix}:salt", secrets.token_hex(32), nx=True)
            salt = client.get(f"{prefix}:salt")
        self._salt = bytes.fromhex(salt.decode() if isinstance(salt, bytes) else str(salt))

    @classmethod
    def from_url(
        cls, url: str, *, retention_days: float, prefix: str = "wikibot:questions"
    ) -> RedisQuestionLog:
        import redis

        try:
            client = redis.Redis.from_url(
                url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
            )
        except ValueError:
            raise QuestionLogError("REDIS_URL is not a valid redis://, rediss:// or unix:// URL") from None
        return cls(client, retention_days=retention_days, prefix=prefix)

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise QuestionLogError(f"the question log in Redis failed: {type(exc).__name__}") from None

    def _entry_key(self, answer_id: str) -> str:
        return f"{self._prefix}:entry:{answer_id}"

    def _ratings_key(self, answer_id: str) -> str:
        return f"{self._prefix}:ratings:{answer_id}"

    def record(self, entry: LoggedQuestion, *, user_id: str = "") -> None:
        record = _as_record(entry, asker_hash(self._salt, entry.platform, user_id))
        ttl = max(1, int(record["asked_at"] + self._retention_s - self._clock()))
        with self._guarded():
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(self._entry_key(entry.answer_id), json.dumps(record), ex=ttl)
            pipe.zadd(self._by_time, {entry.answer_id: record["asked_at"]})
            pipe.execute()

    def _ref_key(self, message_ref: str) -> str:
        return f"{self._prefix}:ref:{message_ref[:_MAX_REF_CHARS]}"

    def link(self, answer_id: str, message_ref: str) -> None:
        with self._guarded():
            ttl = self._redis.ttl(self._entry_key(answer_id))
            if ttl is not None and int(ttl) > 0:
                self._redis.set(self._ref_key(message_ref), answer_id, ex=int(ttl))

    def rate(self, feedback: Feedback) -> bool:
        rater = asker_hash(self._salt, feedback.platform, feedback.user_id) or "anonymous"
        value = json.dumps(
            {"rating": feedback.rating.value, "comment": _clean(feedback.comment, MAX_COMMENT_CHARS)}
        )
        with self._guarded():
            answer_id = feedback.answer_id
            if not answer_id and feedback.message_ref:
                found = self._redis.get(self._ref_key(feedback.message_ref))
                answer_id = found.decode() if isinstance(found, bytes) else str(found or "")
            if not answer_id:
                return False
            ttl = self._redis.ttl(self._entry_key(answer_id))
            if ttl is None or int(ttl) < 0:  # -2: no such entry; -1 cannot happen (entries always expire)
                return False
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(self._ratings_key(answer_id), rater, value)
            pipe.expire(self._ratings_key(answer_id), int(ttl))
            pipe.execute()
        return True

    def entries(self, *, since: datetime) -> list[LoggedQuestion]:
        entries: list[LoggedQuestion] = []
        with self._guarded():
            ids = [
                i.decode() if isinstance(i, bytes) else str(i)
                for i in self._redis.zrangebyscore(self._by_time, since.timestamp(), "+inf")
            ]
            for start in range(0, len(ids), _BATCH):
                batch = ids[start : start + _BATCH]
                pipe = self._redis.pipeline(transaction=False)
                for answer_id in batch:
                    pipe.get(self._entry_key(answer_id))
                    pipe.hgetall(self._ratings_key(answer_id))
                results = pipe.execute()
                for raw, ratings in zip(results[::2], results[1::2], strict=True):
                    if raw is None:
                        continue
                    entry = _from_record(json.loads(raw), _ratings_of(ratings))
                    if entry is not None:
                        entries.append(entry)
        return entries

    def purge_expired(self) -> int:
        """The entries expire by themselves: this drops their ids from the time index."""
        with self._guarded():
            return int(self._redis.zremrangebyscore(self._by_time, "-inf", self._clock() - self._retention_s))

    def close(self) -> None:
        self._redis.close()


def _ratings_of(raw: dict[Any, Any]) -> list[tuple[str, str]]:
    ratings = []
    for value in (raw or {}).values():
        try:
            item = json.loads(value)
            ratings.append((str(item["rating"]), str(item.get("comment", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    return ratings
