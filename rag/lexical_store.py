"""One collection's lexical index on disk: SQLite FTS5 over our own terms, with the chunks it returns.

Terms come from `rag.lexical.tokenize` (accent folding, our token grammar, the en/fr stop words), joined by
spaces; FTS5 only splits them again (its tokenizer keeps `.`, `-` and `_` inside a term) and ranks with its
`bm25()` (k1 = 1.2, b = 0.75). The FTS table is external-content over `chunks`, which holds the terms once
and the chunk's fields, so a search returns whole chunks without asking the vector store. `pages` records
which version and chunk ids of each page the file holds: what a catch-up compares with the ledger.

WAL mode: readers read the last committed state while a catch-up writes its transaction.
"""

from __future__ import annotations

import json
import queue
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rag.lexical import match_expression, tokenize
from rag.sqlite import connect
from rag.types import Chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (page_id TEXT PRIMARY KEY, version INTEGER NOT NULL, chunk_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    page_id TEXT NOT NULL,
    space TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    section TEXT NOT NULL,
    text TEXT NOT NULL,
    terms TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_page ON chunks (page_id);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    terms, content='chunks', content_rowid='id', tokenize="unicode61 remove_diacritics 0 tokenchars '._-'"
);
"""

_SEARCH = """
WITH best AS (SELECT rowid, rank FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT ?)
SELECT c.chunk_id, c.page_id, c.space, c.title, c.url, c.version, c.last_modified, c.section, c.text, -best.rank
FROM best JOIN chunks c ON c.id = best.rowid ORDER BY best.rank, c.chunk_id
"""

# A page's state as the file holds it: (version, chunk ids), compared as a whole with the ledger's.
PageState = tuple[int, tuple[str, ...]]


class CatchUpBusy(Exception):
    """Another process is writing this file and the caller chose not to wait."""


class LexicalFile:
    """The FTS5 file of one collection. Searches may run from any thread; writes come from one catcher-up."""

    def __init__(self, path: Path, *, busy_timeout_s: float) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = connect(path, busy_timeout_s=busy_timeout_s, check_same_thread=False)
        self._writer.executescript(_SCHEMA)
        # Readers of their own (a search never queues behind the writer's connection), kept for reuse: as
        # many as searches ran at once.
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    # -- reading ---------------------------------------------------------------------------------------

    def revision(self) -> int | None:
        """The ledger revision this file last caught up to; None before its first catch-up."""
        with self._reader() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return None if row is None else int(row[0])

    def search(self, query: str, *, k: int) -> list[tuple[Chunk, float]]:
        expression = match_expression(tokenize(query))
        if not expression or k <= 0:
            return []
        with self._reader() as db:
            rows = db.execute(_SEARCH, (expression, k)).fetchall()
        return [(_chunk(row), float(row[9])) for row in rows]

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._readers.get_nowait()
        except queue.Empty:
            db = connect(self.path, busy_timeout_s=self._busy_timeout_s, check_same_thread=False)
        try:
            yield db
        finally:
            self._readers.put(db)

    # -- writing ---------------------------------------------------------------------------------------

    @contextmanager
    def writing(self, *, wait: bool) -> Iterator[LexicalWrite]:
        """One transaction: readers see all of it or none of it. Without wait, raises CatchUpBusy when
        another process holds the write lock rather than waiting for it."""
        db = self._writer
        db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000) if wait else 0}")
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if wait or "locked" not in str(exc):
                raise
            raise CatchUpBusy(str(self.path)) from None
        try:
            yield LexicalWrite(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self._writer.close()
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                return


def _chunk(row: tuple[object, ...]) -> Chunk:
    chunk_id, page_id, space, title, url, version, last_modified, section, text = row[:9]
    return Chunk(
        chunk_id=str(chunk_id),
        page_id=str(page_id),
        space=str(space),
        title=str(title),
        url=str(url),
        version=int(str(version)),
        last_modified=str(last_modified),
        section=str(section),
        text=str(text),
    )


class LexicalWrite:
    """What a catch-up changes, inside LexicalFile.writing's transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def revision(self) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return None if row is None else int(row[0])

    def pages(self) -> dict[str, PageState]:
        rows = self._db.execute("SELECT page_id, version, chunk_ids FROM pages").fetchall()
        return {str(r[0]): (int(r[1]), tuple(json.loads(r[2]))) for r in rows}

    def remove_pages(self, page_ids: Iterable[str]) -> None:
        for page_id in page_ids:
            # External content: FTS5 forgets a row only when told its terms.
            self._db.execute(
                "INSERT INTO fts (fts, rowid, terms) SELECT 'delete', id, terms FROM chunks WHERE page_id = ?",
                (page_id,),
            )
            self._db.execute("DELETE FROM chunks WHERE page_id = ?", (page_id,))
            self._db.execute("DELETE FROM pages WHERE page_id = ?", (page_id,))

    def add_page(self, page_id: str, state: PageState, chunks: Sequence[Chunk]) -> None:
        """Records a page the caller removed first (or never held), with the chunks the store had of it."""
        for c in chunks:
            terms = " ".join(tokenize(c.text))
            cursor = self._db.execute(
                "INSERT INTO chunks (chunk_id, page_id, space, title, url, version, last_modified, section, "
                "text, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    c.chunk_id,
                    page_id,
                    c.space,
                    c.title,
                    c.url,
                    c.version,
                    c.last_modified,
                    c.section,
                    c.text,
                    terms,
                ),
            )
            self._db.execute("INSERT INTO fts (rowid, terms) VALUES (?, ?)", (cursor.lastrowid, terms))
        self._db.execute(
            "INSERT INTO pages (page_id, version, chunk_ids) VALUES (?, ?, ?)",
            (page_id, state[0], json.dumps(list(state[1]))),
        )

    def set_revision(self, revision: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?)", (str(revision),))
