"""The index's ledger and its blue/green switch: the one module that reads and writes what the index holds.

The vector store holds vectors; the ledger (SQLite beside the data) holds the small facts a sync needs to
be incremental (page versions and their chunk ids), which collection readers use and what built it, the
collections still to drop, and the sync history for status and health. A full rebuild (first ingest,
`ingest --full`, a new embedding model or chunk layout) writes a fresh collection and only then points
readers at it, so nobody ever queries a half-built or mixed-model index.

Every ledger key is named once, here; the file layout is the one earlier versions wrote (meta keys,
`pages`, `syncs`), plus a `drops` table, so an existing data folder opens as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from rag.ports import (
    ActiveIndex,
    LedgerStore,
    MissingCollection,
    SyncTarget,
    VectorIndex,
    VectorStore,
    VectorStoreError,
)
from rag.sqlite import connect, write_transaction
from rag.types import ActiveCollection, IndexedPage, IndexSummary, Readiness, SyncReport

log = logging.getLogger(__name__)

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
CREATE TABLE IF NOT EXISTS drops (collection TEXT PRIMARY KEY, reason TEXT NOT NULL);
"""

# The history is for status and health, not an audit log: keep it short.
_SYNCS_KEPT = 200


class _Key(StrEnum):
    """The meta table's keys, spelled as earlier versions wrote them."""

    ACTIVE_COLLECTION = "active_collection"
    ACTIVE_FINGERPRINT = "active_fingerprint"
    ACTIVE_LAYOUT = "active_layout"
    REVISION = "revision"
    LAST_SUCCESS = "last_success_started_at"


class Ledger:
    """The SQLite ledger; implements rag.ports.LedgerStore. Its writers are for KnowledgeBase."""

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
                raise sqlite3.ProgrammingError("the index ledger is closed")
            yield self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._read() as db, write_transaction(db):
            yield db

    def _meta(self) -> dict[_Key, str]:
        # One read: a reader never sees the collection of one switch with the fingerprint of another.
        with self._read() as db:
            rows = db.execute("SELECT key, value FROM meta").fetchall()
        known = {k.value: k for k in _Key}
        return {known[str(k)]: str(v) for k, v in rows if str(k) in known}

    # -- the active collection -------------------------------------------------------------------------

    def active_collection(self) -> ActiveCollection | None:
        meta = self._meta()
        name = meta.get(_Key.ACTIVE_COLLECTION)
        if not name:
            return None
        return ActiveCollection(
            name=name,
            fingerprint=meta.get(_Key.ACTIVE_FINGERPRINT, ""),
            layout=meta.get(_Key.ACTIVE_LAYOUT, ""),
            revision=int(meta.get(_Key.REVISION, "0")),
        )

    def set_active(self, name: str, *, fingerprint: str, layout: str) -> None:
        """Points readers at name, in one transaction with what built it and a new revision."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [
                    (_Key.ACTIVE_FINGERPRINT.value, fingerprint),
                    (_Key.ACTIVE_LAYOUT.value, layout),
                    (_Key.ACTIVE_COLLECTION.value, name),
                ],
            )
            self._bump(db)
            db.execute("DELETE FROM drops WHERE collection = ?", (name,))

    def bump_revision(self) -> None:
        """Tells readers that the active collection's chunks changed."""
        with self._tx() as db:
            self._bump(db)

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (_Key.REVISION.value,),
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

    # -- collections to drop ---------------------------------------------------------------------------

    def doom(self, collection: str, reason: str) -> None:
        """Lists a collection for dropping and forgets its pages: nothing reads them any more."""
        with self._tx() as db:
            db.execute("DELETE FROM pages WHERE collection = ?", (collection,))
            db.execute(
                "INSERT OR REPLACE INTO drops (collection, reason) VALUES (?, ?)", (collection, reason)
            )

    def doomed(self) -> list[str]:
        with self._read() as db:
            rows = db.execute("SELECT collection FROM drops ORDER BY collection").fetchall()
        return [str(r[0]) for r in rows]

    def dropped(self, collection: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM drops WHERE collection = ?", (collection,))

    # -- LedgerReader ----------------------------------------------------------------------------------

    def summary(self) -> IndexSummary:
        meta = self._meta()
        name = meta.get(_Key.ACTIVE_COLLECTION) or None
        with self._read() as db:
            rows = db.execute("SELECT space, chunk_ids FROM pages WHERE collection = ?", (name,)).fetchall()
        return IndexSummary(
            collection=name,
            fingerprint=meta.get(_Key.ACTIVE_FINGERPRINT),
            pages=len(rows),
            chunks=sum(len(json.loads(r[1])) for r in rows),
            spaces=tuple(sorted({str(r[0]) for r in rows})),
        )

    def recent_syncs(self, n: int) -> list[dict[str, object]]:
        with self._read() as db:
            rows = db.execute("SELECT report FROM syncs ORDER BY id DESC LIMIT ?", (n,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def last_good_sync(self) -> dict[str, object] | None:
        with self._read() as db:
            row = db.execute("SELECT report FROM syncs WHERE ok = 1 ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def last_success(self) -> datetime | None:
        value = self._meta().get(_Key.LAST_SUCCESS)
        return datetime.fromisoformat(value) if value else None

    def record_sync(self, report: SyncReport) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO syncs (ok, report) VALUES (?, ?)", (int(report.ok), json.dumps(report.as_dict()))
            )
            db.execute("DELETE FROM syncs WHERE id <= (SELECT MAX(id) FROM syncs) - ?", (_SYNCS_KEPT,))
            if report.ok:
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (_Key.LAST_SUCCESS.value, report.started_at.isoformat()),
                )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class KnowledgeBase:
    """Implements rag.ports.IndexWriter (and so IndexReader and LedgerReader) over a vector store."""

    def __init__(
        self, store: VectorStore, ledger: LedgerStore, *, prefix: str, layout: str = "", shared: bool = False
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._prefix = prefix
        # How pages are cut into chunks (format version, sizes): chunks of two layouts must not mix
        # either, or a changed CHUNK_SIZE would only reach the pages edited since.
        self._layout = layout
        self._lock = threading.Lock()
        self._open: dict[str, VectorIndex] = {}
        # A ledger shared by replicas (Redis) knows every collection of this prefix that is in use, so one
        # it does not know is an orphan: a copy from before replicas shared a ledger, or a dead process's.
        self._shared = shared
        self._ours = re.compile(rf"{re.escape(prefix)}-[0-9a-f]{{8}}-\d{{8}}t\d+")

    def _vectors(self, name: str, *, create: bool = False) -> VectorIndex:
        """The collection, kept open (opening is a round trip to a Chroma server). Only a rebuild creates
        one: a collection the ledger names but the store lacks raises MissingCollection."""
        with self._lock:
            index = self._open.get(name)
            if index is None:
                index = self._store.open(name) if create else self._store.existing(name)
                self._open[name] = index
            return index

    def _forget_handle(self, name: str) -> None:
        with self._lock:
            self._open.pop(name, None)

    # -- IndexReader -----------------------------------------------------------------------------------

    def active(self) -> ActiveIndex | None:
        """None without an index, and when the store has lost the ledger's collection (dropped by another
        process, the store wiped): readers then say the index is empty, and readiness says why."""
        active = self._ledger.active_collection()
        if active is None:
            return None
        try:
            vectors = self._vectors(active.name)
        except MissingCollection:
            log.warning("the active collection %s is missing from the vector store", active.name)
            return None
        return ActiveIndex(
            name=active.name, fingerprint=active.fingerprint, revision=active.revision, vectors=vectors
        )

    def readiness(self, *, summary: IndexSummary | None = None) -> Readiness:
        summary = summary or self._ledger.summary()
        if summary.collection is None:
            return Readiness(False, "the index is empty: no sync has completed", None, 0, None)
        try:
            stored = self._vectors(summary.collection).count()
        except MissingCollection:
            self._forget_handle(summary.collection)
            reason = f"the active collection {summary.collection} is missing from the vector store"
            return Readiness(False, reason, summary.collection, summary.chunks, None)
        except VectorStoreError as exc:
            return Readiness(
                False, f"the vector store fails: {exc}", summary.collection, summary.chunks, None
            )
        if stored == 0:
            return Readiness(False, "the index is empty", summary.collection, summary.chunks, stored)
        return Readiness(True, "ok", summary.collection, summary.chunks, stored)

    def needs_rebuild(self, *, fingerprint: str) -> bool:
        active = self._ledger.active_collection()
        return active is None or active.fingerprint != fingerprint or active.layout != self._layout

    def summary(self) -> IndexSummary:
        return self._ledger.summary()

    def pages(self, collection: str) -> dict[str, IndexedPage]:
        return self._ledger.pages(collection)

    def recent_syncs(self, n: int) -> list[dict[str, object]]:
        return self._ledger.recent_syncs(n)

    def last_good_sync(self) -> dict[str, object] | None:
        return self._ledger.last_good_sync()

    def last_success(self) -> datetime | None:
        return self._ledger.last_success()

    # -- IndexWriter -----------------------------------------------------------------------------------

    def begin(self, *, fingerprint: str, full: bool) -> SyncTarget:
        self._sweep_orphans()
        self._drop_doomed()
        active = self._ledger.active_collection()
        if not full and active is not None and not self.needs_rebuild(fingerprint=fingerprint):
            try:
                vectors = self._vectors(active.name)
                self._reconcile(active.name, vectors)
                return SyncTarget(active.name, rebuild=False, fingerprint=fingerprint, vectors=vectors)
            except MissingCollection:
                # The store is the truth: what the ledger says of a collection that is gone is stale.
                self._forget_handle(active.name)
                log.warning(
                    "the active collection %s is missing from the vector store: rebuilding", active.name
                )
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:8]
        stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S%f")
        name = f"{self._prefix}-{digest}-{stamp}"
        # Listed for dropping until it is activated: a process killed mid-rebuild leaves no orphan.
        self._ledger.doom(name, "rebuild in progress")
        return SyncTarget(
            name, rebuild=True, fingerprint=fingerprint, vectors=self._vectors(name, create=True)
        )

    def _reconcile(self, name: str, vectors: VectorIndex) -> None:
        """Makes the ledger and the store agree when their counts differ (a process killed between writing a
        page's chunks and recording them, a collection edited by hand): chunks the ledger does not list are
        deleted, and a page whose chunks are not all there is forgotten, so this sync indexes it again."""
        pages = self._ledger.pages(name)
        listed = {chunk_id for page in pages.values() for chunk_id in page.chunk_ids}
        if vectors.count() == len(listed):
            return
        stored = set(vectors.ids())
        stray = sorted(stored - listed)
        lacking = [page_id for page_id, page in pages.items() if not stored.issuperset(page.chunk_ids)]
        log.warning(
            "collection %s holds %d chunks the ledger does not list and lacks chunks of %d pages: repairing",
            name,
            len(stray),
            len(lacking),
        )
        vectors.delete(stray)
        self._ledger.remove_pages(name, lacking)

    def indexed_pages(self, target: SyncTarget) -> dict[str, IndexedPage]:
        return self._ledger.pages(target.name)

    def put_page(self, target: SyncTarget, page: IndexedPage) -> None:
        self._ledger.put_page(target.name, page)

    def remove_pages(self, target: SyncTarget, page_ids: Iterable[str]) -> None:
        self._ledger.remove_pages(target.name, page_ids)

    def finish(self, target: SyncTarget, *, ok: bool, changed: bool) -> None:
        if not target.rebuild:
            if changed:
                self._ledger.bump_revision()
            return
        if not ok:
            # A rebuild replaces what readers use: only a complete one is activated.
            self._discard(target.name, "failed rebuild")
            return
        previous = self._ledger.active_collection()
        self._ledger.set_active(target.name, fingerprint=target.fingerprint, layout=self._layout)
        log.info("index %s is now active", target.name)
        if previous is not None and previous.name != target.name:
            # A grace period of one sync interval: a question that read the old pointer (here, or on another
            # replica) still finishes on the old collection. Listed for dropping, it goes at the next sync.
            self._forget_handle(previous.name)
            self._ledger.doom(previous.name, "replaced")

    def record_sync(self, report: SyncReport) -> None:
        self._ledger.record_sync(report)

    def close(self) -> None:
        self._ledger.close()

    # -- dropping collections --------------------------------------------------------------------------

    def _discard(self, name: str, reason: str) -> None:
        with self._lock:
            self._open.pop(name, None)
        # Recorded before the attempt: if the store fails (or the process dies) the next sync retries.
        self._ledger.doom(name, reason)
        self._drop(name)

    def _sweep_orphans(self) -> None:
        if not self._shared:
            return
        active = self._ledger.active_collection()
        known = set(self._ledger.doomed()) | ({active.name} if active else set())
        for name in self._store.names():
            if self._ours.fullmatch(name) and name not in known:
                log.warning("collection %s is in no ledger (an orphan): dropping it", name)
                self._discard(name, "orphan")

    def _drop_doomed(self) -> None:
        active = self._ledger.active_collection()
        for name in self._ledger.doomed():
            if active is not None and name == active.name:
                self._ledger.dropped(name)
                continue
            self._drop(name)

    def _drop(self, name: str) -> None:
        try:
            self._store.drop(name)
        except VectorStoreError as exc:
            log.warning("could not drop collection %s (the next sync tries again): %s", name, exc)
            return
        self._ledger.dropped(name)
