"""The lexical index at scale: the previous rank_bm25 rebuild against the SQLite FTS5 index, on real chunk texts.

    python bench/lexical.py                                    # 10k and 100k chunks, old and new
    python bench/lexical.py --chunks 15000,45000,100000 --engines new,old,bm25s

Chunk texts are the committed quality slice's pages (tests/data/quality_slice: Python's and git's manuals in
Confluence storage format), parsed and chunked as a sync does, copied under new page ids until there are
enough. They are written to an embedded Chroma collection (with 2-d stand-in vectors: nothing here reads
them) and to the ledger, as a sync would, in a work folder that is deleted afterwards (keep it with --work).

For each size and engine, JSON on stdout:
- build_s: the index built from nothing (new: a catch-up of every page; old: all of Chroma's chunks read,
  tokenized and a BM25Okapi built, which every process did at start and after every sync);
- edit_catch_up_s: after a one-page edit (old: the same full rebuild);
- fresh_process_first_query_s, fresh_process_rss_mb: a new process over the same folder, from opening the
  index to its first answer (imports not counted), and its peak RSS;
- query_p50_ms, query_p95_ms: warm, over the slice's questions, k = 20 (the retriever's candidates for k = 5);
- same_top5_scores_as_old: with both engines, the questions whose five best scores are rank_bm25's.

rank_bm25 (old, no longer a dependency) and bm25s (the other candidate) are not installed with WikiBot:
`pip install rank-bm25==0.2.2 bm25s==0.3.16` to compare; an engine that is not installed is reported as skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.chunking import chunk_page
from rag.index import ChromaStore, open_chroma
from rag.knowledge import KnowledgeBase, Ledger
from rag.lexical import tokenize
from rag.lexical_index import SqliteLexicalIndex
from rag.ports import ActiveIndex
from rag.types import Chunk, IndexedPage, Page

SLICE = Path(__file__).resolve().parent.parent / "tests" / "data" / "quality_slice"
COLLECTION = "bench-lexical"
K = 20
MARKER = "zebracorn42"
Search = Callable[[str], list[str]]


def slice_pages() -> list[Page]:
    entries = json.loads((SLICE / "space.json").read_text(encoding="utf-8"))
    return [
        Page(
            e["id"],
            e["space"],
            e["title"],
            1,
            f"http://wiki/{e['id']}",
            (SLICE / e["file"]).read_text("utf-8"),
        )
        for e in entries
    ]


def questions() -> list[str]:
    return [q["question"] for q in json.loads((SLICE / "questions.json").read_text(encoding="utf-8"))]


def corpus(target: int) -> dict[str, list[Chunk]]:
    """Page id → chunks, the slice copied under new page ids until there are about `target` chunks."""
    originals = [(p, chunk_page(p, chunk_size=1000, chunk_overlap=150)) for p in slice_pages()]
    pages: dict[str, list[Chunk]] = {}
    total, copy = 0, 0
    while total < target:
        for page, chunks in originals:
            page_id = f"{page.page_id}-{copy}"
            pages[page_id] = [
                Chunk(
                    f"{page_id}:{n}", page_id, c.space, c.title, c.url, 1, c.last_modified, c.section, c.text
                )
                for n, c in enumerate(chunks)
            ]
            total += len(chunks)
            if total >= target:
                break
        copy += 1
    return pages


def open_kb(work: Path) -> KnowledgeBase:
    return KnowledgeBase(
        ChromaStore(open_chroma(path=work / "chroma")), Ledger(work / "state.sqlite3"), prefix="b"
    )


def active(kb: KnowledgeBase) -> ActiveIndex:
    found = kb.active()
    assert found is not None
    return found


def write_corpus(work: Path, pages: dict[str, list[Chunk]]) -> None:
    ledger = Ledger(work / "state.sqlite3")
    vectors = ChromaStore(open_chroma(path=work / "chroma")).open(COLLECTION)
    batch: list[Chunk] = []
    for page_id, chunks in pages.items():
        batch.extend(chunks)
        ledger.put_page(COLLECTION, IndexedPage(page_id, "S", page_id, 1, tuple(c.chunk_id for c in chunks)))
        if len(batch) >= 5000:
            vectors.upsert(batch, [[1.0, float(i % 7)] for i in range(len(batch))])
            batch = []
    if batch:
        vectors.upsert(batch, [[1.0, float(i % 7)] for i in range(len(batch))])
    ledger.set_active(COLLECTION, fingerprint="bench", layout="")
    ledger.close()


def edit_one_page(work: Path, pages: dict[str, list[Chunk]]) -> str:
    """Edits the first page as a sync would (vectors, then the ledger, then the revision); its first chunk id."""
    page_id, chunks = next(iter(pages.items()))
    edited = [replace(c, version=2, text=f"{c.text} {MARKER}") for c in chunks]
    ledger = Ledger(work / "state.sqlite3")
    ChromaStore(open_chroma(path=work / "chroma")).open(COLLECTION).upsert(
        edited, [[1.0, 0.0] for _ in edited]
    )
    ledger.put_page(COLLECTION, IndexedPage(page_id, "S", page_id, 2, tuple(c.chunk_id for c in edited)))
    ledger.bump_revision()
    ledger.close()
    return edited[0].chunk_id


# -- the engines: each returns (build, search) over an open knowledge base ------------------------------------


def new_engine(work: Path, kb: KnowledgeBase) -> tuple[Callable[[], None], Search]:
    lexical = SqliteLexicalIndex(work / "lexical", kb)

    def search(q: str) -> list[str]:
        return [c.chunk_id for c, _ in lexical.search(q, active=active(kb), k=K)]

    return lambda: lexical.catch_up(active(kb)), search


def old_engine(work: Path, kb: KnowledgeBase) -> tuple[Callable[[], None], Search]:
    import numpy as np
    from rank_bm25 import BM25Okapi

    state: dict[str, Any] = {}

    def build() -> None:
        chunks = active(kb).vectors.all_chunks()
        state["chunks"], state["bm25"] = chunks, BM25Okapi([tokenize(c.text) for c in chunks])

    def search(q: str) -> list[str]:
        scores = state["bm25"].get_scores(tokenize(q))
        return [state["chunks"][i].chunk_id for i in np.argsort(scores)[::-1][:K] if scores[i] > 0]

    return build, search


def bm25s_engine(work: Path, kb: KnowledgeBase) -> tuple[Callable[[], None], Search]:
    import bm25s

    state: dict[str, Any] = {}
    saved = work / "bm25s"

    def build() -> None:
        chunks = active(kb).vectors.all_chunks()
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index([tokenize(c.text) for c in chunks], show_progress=False)
        retriever.save(str(saved))
        state["ids"], state["retriever"] = [c.chunk_id for c in chunks], retriever

    def search(q: str) -> list[str]:
        terms = [t for t in tokenize(q) if t in state["retriever"].vocab_dict]
        if not terms:
            return []
        docs, scores = state["retriever"].retrieve([terms], k=K, show_progress=False, n_threads=1)
        return [state["ids"][int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    return build, search


ENGINES = {"new": (new_engine, None), "old": (old_engine, "rank_bm25"), "bm25s": (bm25s_engine, "bm25s")}


def first_query(work: Path, engine: str, query: str) -> None:
    """In a fresh process: open the index as `wikibot search` would, answer one question, print the time."""
    started = time.perf_counter()
    kb = open_kb(work)
    build, search = ENGINES[engine][0](work, kb)
    if engine == "new":
        pass  # the file is there: its first search only checks the revision it caught up to
    elif engine == "bm25s":
        search = _bm25s_loaded(work, kb)
    else:
        build()
    search(query)
    seconds = time.perf_counter() - started
    print(json.dumps({"first_query_s": round(seconds, 3), "rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM): getrusage's ru_maxrss would also count the parent's, from the fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return -1


def _bm25s_loaded(work: Path, kb: KnowledgeBase) -> Search:
    """bm25s's saved index loaded; the chunk ids still come from the store (it keeps row numbers only)."""
    import bm25s

    loaded = bm25s.BM25.load(str(work / "bm25s"))
    ids = [c.chunk_id for c in active(kb).vectors.all_chunks()]

    def search(q: str) -> list[str]:
        terms = [t for t in tokenize(q) if t in loaded.vocab_dict]
        docs, _ = loaded.retrieve([terms], k=K, show_progress=False, n_threads=1)
        return [ids[int(d)] for d in docs[0]]

    return search


def measure(work: Path, pages: dict[str, list[Chunk]], engine: str, asked: Sequence[str]) -> dict[str, Any]:
    kb = open_kb(work)
    build, search = ENGINES[engine][0](work, kb)
    started = time.perf_counter()
    build()
    build_s = time.perf_counter() - started
    search(asked[0])
    times = []
    for q in asked:
        t = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t) * 1000)
    edited = edit_one_page(work, pages)
    started = time.perf_counter()
    build()
    edit_s = time.perf_counter() - started
    found = edited in search(MARKER)
    kb.close()
    fresh = subprocess.run(
        [sys.executable, __file__, "--first-query", str(work), "--engine", engine],
        check=True,
        capture_output=True,
        text=True,
    )
    first = json.loads(fresh.stdout.strip().splitlines()[-1])
    return {
        "build_s": round(build_s, 2),
        "edit_catch_up_s": round(edit_s, 3),
        "edit_found": found,
        "fresh_process_first_query_s": first["first_query_s"],
        "fresh_process_rss_mb": first["rss_mb"],
        "query_p50_ms": round(statistics.median(times), 1),
        "query_p95_ms": round(statistics.quantiles(times, n=20)[18], 1),
        "queries": len(times),
    }


def measure_size(root: Path, size: int, engines: list[str], asked: Sequence[str]) -> dict[str, Any]:
    pages = corpus(size)
    row: dict[str, Any] = {"pages": len(pages), "chunks": sum(len(c) for c in pages.values())}
    base = root / f"{size}-corpus"
    shutil.rmtree(base, ignore_errors=True)
    started = time.perf_counter()
    write_corpus(base, pages)
    row["write_corpus_s"] = round(time.perf_counter() - started, 1)
    for engine in engines:
        module = ENGINES[engine][1]
        if module is not None and importlib.util.find_spec(module) is None:
            row[engine] = f"skipped: {module} is not installed"
            continue
        # Each engine gets its own copy: the edit below changes the corpus.
        work = root / f"{size}-{engine}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)
        row[engine] = measure(work, pages, engine, asked)
        if engine == "new":
            row[engine]["file_mb"] = round(
                sum(p.stat().st_size for p in (work / "lexical").glob("*")) / 1e6, 1
            )
        shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({size: row[engine]}), file=sys.stderr)
    if {"new", "old"} <= set(engines) and isinstance(row["old"], dict):
        row["same_top5_scores_as_old"] = same_scores(base, asked)
    shutil.rmtree(base, ignore_errors=True)
    return row


def same_scores(work: Path, asked: Sequence[str]) -> str:
    """How many questions get the same five best BM25 scores from both engines (ids may differ among ties:
    copies of one text score alike)."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    kb = open_kb(work)
    chunks = active(kb).vectors.all_chunks()
    old = BM25Okapi([tokenize(c.text) for c in chunks])
    new = SqliteLexicalIndex(work / "lexical", kb)
    same = 0
    for q in asked:
        scores = old.get_scores(tokenize(q))
        expected = [round(float(x), 6) for x in np.sort(scores)[::-1][:5] if x > 0]
        got = [round(score, 6) for _, score in new.search(q, active=active(kb), k=5)]
        same += got == expected
    new.close()
    kb.close()
    return f"{same}/{len(asked)}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", default="10000,100000", help="comma-separated corpus sizes")
    parser.add_argument("--engines", default="new,old", help="new (FTS5), old (rank_bm25), bm25s")
    parser.add_argument("--queries", type=int, default=74, help="questions asked per engine (at most 74)")
    parser.add_argument("--work", type=Path, help="keep the generated index here (not in git)")
    parser.add_argument("--first-query", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="new", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_query:
        first_query(args.first_query, args.engine, questions()[0])
        return
    asked = questions()[: args.queries]
    results: dict[str, Any] = {}
    root = args.work or Path(tempfile.mkdtemp(prefix="wikibot-lexical-"))
    try:
        for size in [int(s) for s in args.chunks.split(",")]:
            results[str(size)] = measure_size(root, size, args.engines.split(","), asked)
    finally:
        if not args.work:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
