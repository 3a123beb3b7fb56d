"""The lexical half of hybrid retrieval: a BM25 file per collection in the data folder, caught up page by page.

Chosen by measurement (bench/lexical.py; figures in the README's Choices): rank_bm25 rebuilt its model from
every chunk in every process and scanned them all per query (1 s at 100k chunks); bm25s answers in
milliseconds but rebuilds its whole matrix for any change; SQLite FTS5 updates a page in place but its
`bm25()` runs per matching row (136 ms p50, 634 ms p95 at 100k). The inverted index of rag/lexical_store.py
(SQLite, postings packed per term, scored with numpy) updates a page in place and answers in milliseconds,
with the standard library and numpy only.

How a process, or a replica with its own data folder over a shared Chroma server, gets the current index:
the file remembers which ledger revision it caught up to and, per page, the version and chunk ids it holds.
When the active (collection, revision) moves, a catch-up compares those with the ledger's page records and
reads from the vector store only the chunks of pages that changed or appeared, and forgets pages that went;
the first search that finds the revision moved does it (a one-page edit costs milliseconds).
So a process start loads the file as it is, a one-page edit costs one page, and every replica converges the
same way whether or not the sync ran in it. A new collection (a blue/green rebuild) gets a fresh file, built
in a thread of its own when a previous file is being served: searches keep reading that one until the new
one is complete, and the files of other collections are deleted then.

A catch-up is one SQLite transaction (WAL): searches read the last committed state meanwhile. The catch-up
lock is held by catchers-up only: a search that finds another thread catching up does not wait for it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag.lexical_store import CatchUpBusy, LexicalFile, LexicalWrite, PageState
from rag.ports import ActiveIndex, LedgerReader, VectorStoreError
from rag.types import Chunk

log = logging.getLogger(__name__)

# Bump when tokenize or the file's schema changes: every process then builds a fresh file (and deletes
# the old one) instead of mixing two kinds of terms.
LEXICAL_FORMAT = 1
# Chunk ids asked of the vector store at once during a catch-up.
_FETCH_CHUNKS = 2000
# Chroma's own rule for collection names: safe as a file name too.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SqliteLexicalIndex:
    """Implements rag.ports.LexicalIndex. Blocking: callers on the event loop run it in a thread."""

    def __init__(self, directory: Path, ledger: LedgerReader, *, busy_timeout_s: float = 60.0) -> None:
        self._dir = directory
        self._ledger = ledger
        self._busy_timeout_s = busy_timeout_s
        # Held only by catchers-up, never by a search.
        self._lock = threading.Lock()
        # What searches read (the last complete state) and the (collection, revision) it caught up to.
        self._serving: LexicalFile | None = None
        self._at: tuple[str, int] | None = None

    def search(self, query: str, *, active: ActiveIndex, k: int) -> list[tuple[Chunk, float]]:
        serving = self._caught_up(active)
        return [] if serving is None else serving.search(query, k=k)

    def document_frequencies(self, terms: Iterable[str], *, active: ActiveIndex) -> dict[str, int]:
        serving = self._caught_up(active)
        return {} if serving is None else serving.document_frequencies(terms)

    def _caught_up(self, active: ActiveIndex) -> LexicalFile | None:
        """The file to read: caught up to active first, unless another thread is catching up."""
        if self._at != (active.name, active.revision) and self._lock.acquire(blocking=False):
            if self._serving is not None and self._at is not None and self._at[0] != active.name:
                # A new collection's file is built from every chunk (tens of seconds at 100k): beside the
                # searches, which keep the previous collection's file until the new one is complete.
                threading.Thread(
                    target=self._locked_catch_up, args=(active,), name="lexical-build", daemon=True
                ).start()
            else:
                self._locked_catch_up(active)
        return self._serving

    def catch_up(self, active: ActiveIndex) -> None:
        with self._lock:
            self._catch_up(active, wait=True)

    def close(self) -> None:
        # Without the lock: a build under way in its own thread must not hold up a shutdown.
        serving, self._serving, self._at = self._serving, None, None
        if serving is not None:
            serving.close()

    # -- catching up (under self._lock) ----------------------------------------------------------------

    def _locked_catch_up(self, active: ActiveIndex) -> None:
        """A search's catch-up: called holding the lock, which it releases (from whichever thread runs it)."""
        try:
            self._catch_up(active, wait=False)
        except VectorStoreError as exc:
            # The question is still answered, from the last complete state; the next one tries again.
            log.warning("lexical index of %s could not catch up: %s", active.name, exc)
        finally:
            self._lock.release()

    def _catch_up(self, active: ActiveIndex, *, wait: bool) -> None:
        started = time.monotonic()
        same = self._serving is not None and self._at is not None and self._at[0] == active.name
        file = self._serving if same and self._serving is not None else self._open(active.name)
        # A file another process (or an earlier run) brought up to date needs no write lock at all.
        if file.revision() != active.revision:
            try:
                with file.writing(wait=wait) as write:
                    changed, removed, fetched = self._apply(write, active)
            except CatchUpBusy:
                # Another process is catching this file up (the same work): answer from what it committed
                # last, if nothing better is served, and try again at the next search.
                if self._serving is None and file.revision() is not None:
                    self._serving = file
                return
            log.info(
                "lexical index of %s caught up to revision %d: %d pages read (%d chunks), %d removed, %.2f s",
                active.name,
                active.revision,
                changed,
                fetched,
                removed,
                time.monotonic() - started,
            )
        self._serving, self._at = file, (active.name, active.revision)
        if not same:
            self._delete_others(file.path)

    def _apply(self, write: LexicalWrite, active: ActiveIndex) -> tuple[int, int, int]:
        """Brings the file to the ledger's page records; returns pages read, pages removed, chunks read."""
        if write.revision() == active.revision:
            return 0, 0, 0
        held = write.pages()
        wanted: dict[str, PageState] = {
            page_id: (page.version, page.chunk_ids)
            for page_id, page in self._ledger.pages(active.name).items()
        }
        gone = [p for p in held if p not in wanted]
        changed = [p for p, state in wanted.items() if held.get(p) != state]
        write.remove_pages([*gone, *(p for p in changed if p in held)])
        fetched = 0
        for pages in _batches(changed, wanted):
            chunks = active.vectors.get([c for p in pages for c in wanted[p][1]])
            fetched += len(chunks)
            by_id = {c.chunk_id: c for c in chunks}
            for page_id in pages:
                # In the ledger's order; a chunk a sync running now already deleted is left out, and the
                # page is read again once the ledger records that sync's version.
                held_chunks = [by_id[c] for c in wanted[page_id][1] if c in by_id]
                write.add_page(page_id, wanted[page_id], held_chunks)
        write.set_revision(active.revision)
        return len(changed), len(gone), fetched

    def _open(self, collection: str) -> LexicalFile:
        if not _SAFE_NAME.fullmatch(collection):
            raise ValueError(f"collection name {collection!r} cannot name a lexical index file")
        return LexicalFile(self._dir / _file_name(collection), busy_timeout_s=self._busy_timeout_s)

    def _delete_others(self, keep: Path) -> None:
        # Readers of the previous file in this or another process keep their open connections (the
        # file is only unlinked); no process reads it again once it has caught up to the new collection.
        for path in self._dir.glob("*.sqlite3*"):
            if not path.name.startswith(keep.name):
                path.unlink(missing_ok=True)


def _file_name(collection: str) -> str:
    return f"{collection}.lexical-v{LEXICAL_FORMAT}.sqlite3"


def _batches(page_ids: list[str], wanted: dict[str, PageState]) -> Iterator[list[str]]:
    """Pages in groups of about _FETCH_CHUNKS chunk ids (a page is never split)."""
    batch: list[str] = []
    size = 0
    for page_id in page_ids:
        batch.append(page_id)
        size += len(wanted[page_id][1])
        if size >= _FETCH_CHUNKS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
