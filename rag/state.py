"""What the index holds and how syncs went, in SQLite beside the data: the sync's memory.

Chroma holds vectors; this holds the small facts a sync needs to be incremental (page versions and
their chunk ids), the name of the collection readers use, and the sync history for status and health.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rag.sqlite import connect, write_transaction
from rag.types import SyncReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    collection TEXT NOT NULL,
    page_id TEXT NOT NULL,
    space TEXT NOT NULL,
    title TEXT NOT NULL,
    version INTEGER NOT NULL,
    chunk_ids TEXT NOT NULL,
    PRIMARY KEY (collection, page_id)
);
CREATE TABLE IF NOT EXISTS syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ok INTEGER NOT NULL,
    report TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class IndexedPage:
    page_id: str
    space: str
    title: str
    version: int
    chunk_ids: tuple[str, ...]


class StateStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection behind a lock (as the session store): per-thread connections would pile up in
        # asyncio.to_thread's pool, whose threads we never see end.
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = connect(path, busy_timeout_s=30, check_same_thread=False)
        self._conn.executescript(_SCHEMA)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise sqlite3.ProgrammingError("the state store is closed")
            yield self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._read() as db, write_transaction(db):
            yield db

    # -- meta ------------------------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def revision(self) -> int:
        """Bumped on every index write, so readers know when their lexical index is stale."""
        return int(self.get("revision") or 0)

    def bump_revision(self) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('revision', '1') "
                "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )

    # -- pages -----------------------------------------------------------------------------------------

    def pages(self, collection: str) -> dict[str, IndexedPage]:
        with self._read() as db:
            rows = db.execute(
                "SELECT page_id, space, title, version, chunk_ids FROM pages WHERE collection = ?",
                (collection,),
            ).fetchall()
        return {r[0]: IndexedPage(r[0], r[1], r[2], int(r[3]), tuple(json.loads(r[4]))) for r in rows}

    def put_page(self, collection: str, page: IndexedPage) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO pages (collection, page_id, space, title, version, chunk_ids) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (collection, page.page_id, page.space, page.title, page.version, json.dumps(page.chunk_ids)),
            )

    def remove_pages(self, collection: str, page_ids: Iterable[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "DELETE FROM pages WHERE collection = ? AND page_id = ?", [(collection, p) for p in page_ids]
            )

    def drop_collection(self, collection: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM pages WHERE collection = ?", (collection,))

    def counts(self, collection: str) -> tuple[int, int, list[str]]:
        """Pages, chunks and spaces of a collection."""
        with self._read() as db:
            rows = db.execute(
                "SELECT space, chunk_ids FROM pages WHERE collection = ?", (collection,)
            ).fetchall()
        chunks = sum(len(json.loads(r[1])) for r in rows)
        return len(rows), chunks, sorted({str(r[0]) for r in rows})

    # -- syncs -----------------------------------------------------------------------------------------

    def record_sync(self, report: SyncReport) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO syncs (ok, report) VALUES (?, ?)", (int(report.ok), json.dumps(report.as_dict()))
            )
            # The history is for status and health, not an audit log: keep it short.
            db.execute("DELETE FROM syncs WHERE id <= (SELECT MAX(id) FROM syncs) - 200")

    def recent_syncs(self, n: int) -> list[dict[str, object]]:
        with self._read() as db:
            rows = db.execute("SELECT report FROM syncs ORDER BY id DESC LIMIT ?", (n,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def last_success(self) -> datetime | None:
        value = self.get("last_success_started_at")
        return datetime.fromisoformat(value) if value else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
