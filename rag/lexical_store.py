"""One collection's lexical index on disk: an inverted index in SQLite, scored as rank_bm25's BM25Okapi scored.

A row per term holds its postings as one packed array (chunk row id, term frequency, chunk length); a search
reads the rows of its terms in one snapshot and scores them with numpy. SQLite FTS5 was measured first
(bench/lexical.py): its `bm25()` runs once per matching row, and a wiki question's many terms match most
chunks, so it took 136 ms p50 / 634 ms p95 at 100k chunks; reading the postings and scoring them as arrays
takes a few milliseconds. The scoring is rank_bm25's (k1 = 1.5, b = 0.75, the IDF of a term in more than half
of the chunks floored at a quarter of the average IDF), so rankings are those the bot had before.

Terms come from `rag.lexical.tokenize`. `pages` records which version and chunk ids of each page the file
holds: what a catch-up compares with the ledger. WAL mode: searches read the last committed state while a
catch-up writes its transaction.
"""

from __future__ import annotations

import json
import math
import queue
import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rag.lexical import tokenize
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
    -- its distinct terms (whose postings forget it when the chunk goes) and how many terms it has
    terms TEXT NOT NULL,
    length INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_page ON chunks (page_id);
CREATE TABLE IF NOT EXISTS postings (term TEXT PRIMARY KEY, df INTEGER NOT NULL, packed BLOB NOT NULL);
"""

_POSTING = np.dtype([("id", "<i4"), ("tf", "<u2"), ("length", "<u2")])
_MAX_U16 = 65535
# rank_bm25's BM25Okapi defaults, the ranking every quality figure so far was measured with.
K1, B, EPSILON = 1.5, 0.75, 0.25
_MIN_IDF = 1e-6
_WAL_KEPT = 64 * 1024 * 1024

_CHUNK_FIELDS = "id, chunk_id, page_id, space, title, url, version, last_modified, section, text"

# A page's state as the file holds it: (version, chunk ids), compared as a whole with the ledger's.
PageState = tuple[int, tuple[str, ...]]


class CatchUpBusy(Exception):
    """Another process is writing this file and the caller chose not to wait."""


class LexicalFile:
    """The lexical file of one collection. Searches may run from any thread; writes come from one catcher-up."""

    def __init__(self, path: Path, *, busy_timeout_s: float) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = connect(path, busy_timeout_s=busy_timeout_s, check_same_thread=False)
        # A first catch-up writes the whole index through the WAL: cut it back once it is checkpointed.
        self._writer.execute(f"PRAGMA journal_size_limit={_WAL_KEPT}")
        self._writer.executescript(_SCHEMA)
        # Readers of their own (a search never queues behind the writer's connection), kept for reuse: as
        # many as searches ran at once.
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    # -- reading ---------------------------------------------------------------------------------------

    def revision(self) -> int | None:
        """The ledger revision this file last caught up to; None before its first catch-up."""
        with self._reader() as db:
            return _revision(db)

    def search(self, query: str, *, k: int) -> list[tuple[Chunk, float]]:
        terms = Counter(tokenize(query))
        if not terms or k <= 0:
            return []
        with self._reader() as db:
            # One snapshot: the statistics and the postings of the same committed state.
            db.execute("BEGIN")
            try:
                return _search(db, terms, k)
            finally:
                db.execute("COMMIT")

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """How many chunks hold each of these terms; a term no chunk holds is left out."""
        wanted = sorted(set(terms))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._reader() as db:
            rows = db.execute(f"SELECT term, df FROM postings WHERE term IN ({marks})", wanted).fetchall()  # noqa: S608
        return {str(term): int(df) for term, df in rows if int(df) > 0}

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
        """One transaction: readers see all of it or none of it. Raises CatchUpBusy when another process holds
        the write lock: at once without wait, else after the busy timeout."""
        db = self._writer
        db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000) if wait else 0}")
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            raise CatchUpBusy(str(self.path)) from None
        try:
            write = LexicalWrite(db)
            yield write
            write.flush()
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


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    return {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta").fetchall()}


def _revision(db: sqlite3.Connection) -> int | None:
    value = _meta(db).get("revision")
    return None if value is None else int(value)


def _search(db: sqlite3.Connection, terms: Counter[str], k: int) -> list[tuple[Chunk, float]]:
    meta = _meta(db)
    n, total = int(meta.get("chunks", "0")), int(meta.get("terms", "0"))
    if n == 0 or total == 0:
        return []
    avgdl = total / n
    # Unlike rank_bm25, the floor stays positive and also lifts an IDF of exactly 0 (a term in half the
    # chunks): in a tiny index its average IDF is negative or 0 and every match scored 0 or less, so a search
    # found nothing at all. In a real wiki only terms in half the chunks or more are floored, as before.
    floor = max(EPSILON * float(meta.get("average_idf", "0")), _MIN_IDF)
    marks = ",".join("?" * len(terms))
    rows = db.execute(
        f"SELECT term, df, packed FROM postings WHERE term IN ({marks})",  # noqa: S608 (only placeholders)
        list(terms),
    ).fetchall()
    if not rows:
        return []
    ids, scores = [], []
    for term, df, packed in rows:
        postings = np.frombuffer(packed, dtype=_POSTING)
        idf = math.log(n - df + 0.5) - math.log(df + 0.5)
        tf = postings["tf"].astype(np.float64)
        norm = K1 * (1 - B + B * postings["length"] / avgdl)
        # A term asked twice weighs twice, as rank_bm25 summed it once per query term.
        scores.append((idf if idf > 0 else floor) * terms[str(term)] * tf * (K1 + 1) / (tf + norm))
        ids.append(postings["id"])
    summed = np.bincount(np.concatenate(ids), weights=np.concatenate(scores))
    best = np.argpartition(-summed, k - 1)[:k] if len(summed) > k else np.arange(len(summed))
    # Rounded: the same scores summed in another order (an index caught up page by page, one built at once)
    # differ in their last bits, and ties must still fall to the chunk id.
    wanted = {int(i): round(float(summed[i]), 9) for i in best if summed[i] > 0}
    if not wanted:
        return []
    marks = ",".join("?" * len(wanted))
    found = db.execute(f"SELECT {_CHUNK_FIELDS} FROM chunks WHERE id IN ({marks})", list(wanted)).fetchall()  # noqa: S608
    hits = [(_chunk(row[1:]), wanted[int(row[0])]) for row in found]
    return sorted(hits, key=lambda hit: (-hit[1], hit[0].chunk_id))


def _sorted_member(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """ids in sorted_ids, by binary search: np.isin would sort the removed ids again for every term."""
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.asarray(sorted_ids[at] == ids)


def _chunk(row: tuple[object, ...]) -> Chunk:
    chunk_id, page_id, space, title, url, version, last_modified, section, text = row
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
    """What a catch-up changes, inside LexicalFile.writing's transaction.

    Chunk rows are written at once; postings are gathered and each touched term's row rewritten once, at
    flush: a catch-up of many pages rewrites a common term's postings once, not once per page.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._removed: set[int] = set()
        self._touched: set[str] = set()
        self._added: dict[str, tuple[array[int], array[int], array[int]]] = {}
        self._chunks = 0
        self._terms = 0

    def revision(self) -> int | None:
        return _revision(self._db)

    def pages(self) -> dict[str, PageState]:
        rows = self._db.execute("SELECT page_id, version, chunk_ids FROM pages").fetchall()
        return {str(r[0]): (int(r[1]), tuple(json.loads(r[2]))) for r in rows}

    def remove_pages(self, page_ids: Iterable[str]) -> None:
        for page_id in page_ids:
            for chunk_row, terms, length in self._db.execute(
                "SELECT id, terms, length FROM chunks WHERE page_id = ?", (page_id,)
            ).fetchall():
                self._removed.add(int(chunk_row))
                self._touched.update(str(terms).split())
                self._chunks -= 1
                self._terms -= int(length)
            self._db.execute("DELETE FROM chunks WHERE page_id = ?", (page_id,))
            self._db.execute("DELETE FROM pages WHERE page_id = ?", (page_id,))

    def add_page(self, page_id: str, state: PageState, chunks: Sequence[Chunk]) -> None:
        """Records a page the caller removed first (or never held), with the chunks the store had of it."""
        for c in chunks:
            counts = Counter(tokenize(c.text))
            full_length = sum(counts.values())
            length = min(full_length, _MAX_U16)
            cursor = self._db.execute(
                "INSERT INTO chunks (chunk_id, page_id, space, title, url, version, last_modified, section, "
                "text, terms, length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    " ".join(counts),
                    full_length,
                ),
            )
            row = int(cursor.lastrowid or 0)
            for term, tf in counts.items():
                ids, tfs, lengths = self._added.setdefault(term, (array("i"), array("H"), array("H")))
                ids.append(row)
                tfs.append(min(tf, _MAX_U16))
                lengths.append(length)
            self._chunks += 1
            self._terms += full_length
        self._db.execute(
            "INSERT INTO pages (page_id, version, chunk_ids) VALUES (?, ?, ?)",
            (page_id, state[0], json.dumps(list(state[1]))),
        )

    def set_revision(self, revision: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?)", (str(revision),))

    def flush(self) -> None:
        """Rewrites the postings of every term a removed or added chunk has, then the corpus statistics."""
        removed = np.sort(np.fromiter(self._removed, dtype=np.int32, count=len(self._removed)))
        for term in self._touched | self._added.keys():
            row = self._db.execute("SELECT packed FROM postings WHERE term = ?", (term,)).fetchone()
            postings = np.frombuffer(row[0], dtype=_POSTING) if row else np.empty(0, dtype=_POSTING)
            if len(removed) and len(postings):
                postings = postings[~_sorted_member(postings["id"], removed)]
            if term in self._added:
                ids, tfs, lengths = self._added[term]
                new = np.empty(len(ids), dtype=_POSTING)
                new["id"], new["tf"], new["length"] = ids, tfs, lengths
                postings = np.concatenate([postings, new])
            if len(postings):
                self._db.execute(
                    "INSERT OR REPLACE INTO postings (term, df, packed) VALUES (?, ?, ?)",
                    (term, len(postings), postings.tobytes()),
                )
            else:
                self._db.execute("DELETE FROM postings WHERE term = ?", (term,))
        self._statistics()

    def _statistics(self) -> None:
        meta = _meta(self._db)
        chunks = int(meta.get("chunks", "0")) + self._chunks
        terms = int(meta.get("terms", "0")) + self._terms
        dfs = np.array(
            [r[0] for r in self._db.execute("SELECT df FROM postings").fetchall()], dtype=np.float64
        )
        # rank_bm25's floor for terms in more than half of the chunks: a share of the average IDF of all terms.
        average_idf = float(np.mean(np.log(chunks - dfs + 0.5) - np.log(dfs + 0.5))) if len(dfs) else 0.0
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("chunks", str(chunks)), ("terms", str(terms)), ("average_idf", repr(average_idf))],
        )
        self._removed, self._touched, self._added, self._chunks, self._terms = set(), set(), {}, 0, 0
