"""Retrieval at scale, end to end on real pages: ingest, a fresh process's first answer, query latency, memory;
prints JSON.

    python bench/corpus.py                    # once: builds bench/.corpus (Python's and git's manuals)
    python bench/scale.py                     # ~10k chunks (360 pages) and ~100k (the corpus 5 times)
    python bench/scale.py --runs 360x1        # pages x copies
    python bench/scale.py --runs 737x5 --keep # keep the index in bench/.scale-data/737x5 for a re-run

Each run serves `pages` pages of the corpus (an even slice, as bench/ingest.py takes it), `copies` times
under new ids and titles, through the loopback Confluence fake and the real client, and measures, each
step in a process of its own:

- ingest: `wikibot ingest`'s path (build_core + sync) into an empty data folder: pages/s, chunks/s, the time
  split, the lexical index's build (its catch-up right after the sync), peak RSS;
- cli_first_answer_s: `wikibot search QUESTION --json` in a new process over that folder, start to exit
  (Python start-up and imports included: what an operator waits for);
- a query process over the folder, as `serve` answers: first search (models loaded, index opened) and then
  per-search p50/p95 over the quality set's questions, for dense only, lexical only, fused (both, no
  cross-encoder) and the default (fused and reranked), and its peak RSS after all of them.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USER, PASSWORD = "bench@example.com", "bench"
QUESTIONS = 80


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _questions() -> list[str]:
    asked = [
        q["question"]
        for file in sorted((ROOT / "bench" / "quality_set").glob("*.json"))
        for q in json.loads(file.read_text(encoding="utf-8"))
        if q.get("kind") != "followup"
    ]
    return asked[:: max(1, len(asked) // QUESTIONS)][:QUESTIONS]


def _settings(data: Path, **extra: Any) -> Any:
    from bot.config import load_settings

    return load_settings(data_dir=data, embed_cache_dir=ROOT / ".bench-cache", **extra)


def ingest(wiki: Path, copies: int, data: Path) -> dict[str, Any]:
    from bot.app import build_core
    from bot.demo.confluence_fake import ConfluenceFake

    spaces = sorted({str(e["space"]) for e in json.loads((wiki / "space.json").read_text(encoding="utf-8"))})
    with ConfluenceFake(username=USER, password=PASSWORD, copies=copies, wiki_dir=wiki) as fake:
        settings = _settings(
            data,
            confluence_url=fake.base_url,
            confluence_username=USER,
            confluence_password=PASSWORD,
            confluence_space=",".join(spaces),
        )
        t0 = time.perf_counter()
        core = build_core(settings)
        lexical_s: list[float] = []
        catch_up = core.retriever.catch_up

        def timed_catch_up() -> None:
            started = time.perf_counter()
            catch_up()
            lexical_s.append(time.perf_counter() - started)

        core.retriever.catch_up = timed_catch_up  # type: ignore[method-assign]
        report = core.sync()
        seconds = time.perf_counter() - t0
        core.close()
    return {
        "pages": report.added,
        "chunks": report.chunks_total,
        "seconds": round(seconds, 1),
        "pages_per_s": round(report.added / seconds, 2),
        "chunks_per_s": round(report.chunks_total / seconds, 1),
        "time_split_s": report.as_dict()["time_split_s"],
        "lexical_build_s": round(sum(lexical_s), 2),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[round(0.95 * (len(ordered) - 1))], 1),
    }


def query(data: Path) -> dict[str, Any]:
    from bot.app import build_core

    t0 = time.perf_counter()
    core = build_core(_settings(data))
    asked = _questions()
    core.retriever.search(asked[0])
    first_s = time.perf_counter() - t0
    default = core.retriever
    variants = {"dense": copy.copy(default), "lexical": copy.copy(default), "fused": copy.copy(default)}
    variants["dense"]._mode = "dense"  # a bench reaches into the retriever on purpose
    variants["lexical"]._mode = "lexical"
    for name in variants:
        variants[name]._reranker = None
    result: dict[str, Any] = {"first_search_s": round(first_s, 2), "questions": len(asked)}
    for name, retriever in [*variants.items(), ("fused_reranked", default)]:
        latencies = []
        for question in asked:
            started = time.perf_counter()
            retriever.search(question)
            latencies.append((time.perf_counter() - started) * 1000)
        result[name] = _quantiles(latencies)
    result["chunks"] = core.kb.summary().chunks
    result["peak_rss_mb"] = _peak_rss_mb()
    core.close()
    return result


def cli_first_answer(data: Path) -> float:
    env = {**os.environ, "DATA_DIR": str(data), "EMBED_CACHE_DIR": str(ROOT / ".bench-cache")}
    wikibot = Path(sys.executable).with_name("wikibot")
    t0 = time.perf_counter()
    subprocess.run(
        [str(wikibot), "search", _questions()[1], "--json"],
        env=env,
        check=True,
        capture_output=True,
        cwd=tempfile.gettempdir(),
    )
    return round(time.perf_counter() - t0, 2)


def _worker(step: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", step, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-3:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=str(ROOT / "bench" / ".corpus"))
    parser.add_argument("--runs", default="360x1,737x5", help="comma-separated pages x copies")
    parser.add_argument("--keep", action="store_true", help="keep each index in bench/.scale-data/")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from bot.runtime import harden_environment

    harden_environment()
    if args.worker:
        step, *rest = args.worker
        out = ingest(Path(rest[0]), int(rest[1]), Path(rest[2])) if step == "ingest" else query(Path(rest[0]))
        print(json.dumps(out))
        return

    from bench.ingest import slice_corpus

    results: dict[str, Any] = {"cpus": os.cpu_count(), "runs": []}
    for run in args.runs.split(","):
        pages, copies = (int(x) for x in run.lower().split("x"))
        wiki = Path(tempfile.mkdtemp(prefix="wikibot-scale-wiki-"))
        data = (
            ROOT / "bench" / ".scale-data" / run
            if args.keep
            else Path(tempfile.mkdtemp(prefix="wikibot-scale-"))
        )
        try:
            slice_corpus(Path(args.corpus), pages, wiki)
            fresh = not (data / "state.sqlite3").exists()
            entry: dict[str, Any] = {"pages": pages, "copies": copies}
            if fresh:
                entry["ingest"] = _worker("ingest", str(wiki), str(copies), str(data))
            entry["cli_first_answer_s"] = cli_first_answer(data)
            entry["query_process"] = _worker("query", str(data))
            results["runs"].append(entry)
            print(json.dumps(entry), file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(wiki, ignore_errors=True)
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
