"""Ingest benchmark: the naive pipeline against ours, on the sample wiki multiplied or a real corpus; prints JSON.

    python bench/ingest.py --copies 27          # about 1,000 pages
    python bench/ingest.py --copies 27 --repeat 3   # old and new alternately, 3 times each
    python bench/ingest.py --copies 1 --paths new
    python bench/ingest.py --corpus bench/.corpus --pages 300   # a slice of the real corpus (bench/corpus.py)

Each path runs in its own process (so peak RSS is its own) against the loopback Confluence fake, through
the real atlassian-python-api client. "old" is the design this project starts from: tags stripped to text,
fixed 800-character chunks with 100 overlap, one torch fp32 SentenceTransformer, pages embedded in arrival
order, random chunk ids added to Chroma. "new" is `wikibot ingest`: structure-aware chunks, the configured
embedding backend, the fetch/embed pipeline, followed by a re-sync of the unchanged space.

On shared cores a single run can be off by 20 % either way: --repeat alternates the paths and reports
every run's seconds and the median of each path (speedups are median against median).

With --corpus, both paths ingest the same real pages: --pages takes an evenly spread slice of its
space.json (every space represented; a parent outside the slice becomes null), written to a temporary wiki
folder that the loopback fake serves.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USER, PASSWORD = "bench@example.com", "bench"


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _size_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def slice_corpus(corpus: Path, pages: int, into: Path) -> list[dict[str, Any]]:
    """An evenly spread, deterministic slice of a corpus written as a wiki folder the fake serves.

    Pages are taken at even steps through space.json, so every space and every part of a manual is
    represented; a parent left outside the slice becomes null (the page is then a root of its space).
    """
    entries: list[dict[str, Any]] = json.loads((corpus / "space.json").read_text(encoding="utf-8"))
    if 0 < pages < len(entries):
        entries = [entries[i * len(entries) // pages] for i in range(pages)]
    kept = {str(e["id"]) for e in entries}
    into.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if entry.get("parent_id") is not None and str(entry["parent_id"]) not in kept:
            entry["parent_id"] = None
        shutil.copyfile(corpus / entry["file"], into / entry["file"])
    (into / "space.json").write_text(json.dumps(entries), encoding="utf-8")
    return entries


def _wiki(wiki: Path | None) -> tuple[Path | None, list[str]]:
    """The folder the fake serves (None: the sample wiki) and the spaces to ingest from it."""
    if wiki is None:
        return None, ["LUMEN"]
    entries = json.loads((wiki / "space.json").read_text(encoding="utf-8"))
    return wiki, sorted({str(e.get("space", "LUMEN")) for e in entries})


def run_old(copies: int, data: Path, wiki: Path | None) -> dict[str, Any]:
    from atlassian import Confluence
    from bs4 import BeautifulSoup
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    from bot.demo.confluence_fake import ConfluenceFake
    from rag.confluence import ConfluenceSource
    from rag.embedding import resolve_model
    from rag.index import open_chroma

    wiki_dir, spaces = _wiki(wiki)
    with ConfluenceFake(username=USER, password=PASSWORD, copies=copies, wiki_dir=wiki_dir) as fake:
        t_start = time.perf_counter()
        model = SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2").path), device="cpu")
        collection = open_chroma(path=data / "chroma").get_or_create_collection(
            "naive", embedding_function=None
        )
        source = ConfluenceSource(
            Confluence(url=fake.base_url, username=USER, password=PASSWORD, cloud=True), spaces=spaces
        )
        splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=100)
        split = {"fetch": 0.0, "parse": 0.0, "embed": 0.0, "write": 0.0}
        pages = chunks = 0
        pages_iter = source.pages_modified_since(None)
        while True:
            t0 = time.perf_counter()
            page = next(pages_iter, None)
            split["fetch"] += time.perf_counter() - t0
            if page is None:
                break
            t0 = time.perf_counter()
            texts = splitter.split_text(BeautifulSoup(page.body, "lxml").get_text(" "))
            split["parse"] += time.perf_counter() - t0
            if not texts:
                continue
            t0 = time.perf_counter()
            vectors = model.encode(texts)
            split["embed"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            collection.add(
                ids=[str(uuid.uuid4()) for _ in texts],
                documents=texts,
                embeddings=vectors,
                metadatas=[{"page_id": page.page_id, "title": page.title} for _ in texts],
            )
            split["write"] += time.perf_counter() - t0
            pages += 1
            chunks += len(texts)
        seconds = time.perf_counter() - t_start
    return {
        "pages": pages,
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 2),
        "chunks_per_s": round(chunks / seconds, 2),
        "time_split_s": {k: round(v, 2) for k, v in split.items()},
        "peak_rss_mb": _peak_rss_mb(),
        "index_size_mb": _size_mb(data),
    }


def warm_model_cache(cache: Path, backend: str) -> float:
    """The int8 export happens once per machine and model; it is not part of an ingest's cost."""
    from rag.embedding import build_embedder

    t0 = time.perf_counter()
    build_embedder("all-MiniLM-L6-v2", backend=backend, cache_dir=cache, batch_size=32)  # type: ignore[arg-type]
    return round(time.perf_counter() - t0, 2)


def run_new(copies: int, data: Path, backend: str, cache: Path, wiki: Path | None) -> dict[str, Any]:
    from bot.app import build_core
    from bot.config import load_settings
    from bot.demo.confluence_fake import ConfluenceFake

    wiki_dir, spaces = _wiki(wiki)
    with ConfluenceFake(username=USER, password=PASSWORD, copies=copies, wiki_dir=wiki_dir) as fake:
        settings = load_settings(
            confluence_url=fake.base_url,
            confluence_username=USER,
            confluence_password=PASSWORD,
            confluence_space=",".join(spaces),
            data_dir=data,
            embed_backend=backend,
            embed_cache_dir=cache,
        )
        t_start = time.perf_counter()
        core = build_core(settings)
        report = core.sync()
        seconds = time.perf_counter() - t_start
        fake.clear_requests()
        t0 = time.perf_counter()
        again = core.sync()
        resync_s = time.perf_counter() - t0
        resync_requests = len(fake.requests)
        resync_bodies = fake.body_requests()
        fingerprint = core.kb.summary().fingerprint
        core.close()
    pages, chunks = report.added, report.chunks_total
    return {
        "pages": pages,
        "chunks": chunks,
        "embedder": fingerprint,
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 2),
        "chunks_per_s": round(chunks / seconds, 2),
        "time_split_s": report.as_dict()["time_split_s"],
        "peak_rss_mb": _peak_rss_mb(),
        "index_size_mb": _size_mb(data),
        "resync_unchanged": {
            "seconds": round(resync_s, 2),
            "confluence_requests": resync_requests,
            "body_requests": resync_bodies,
            "chunks_embedded": again.chunks_embedded,
        },
    }


def _alternate(
    order: list[str], wiki_args: list[str], args: argparse.Namespace, results: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Runs each worker of `order` in its own process; the model cache warm-up is reported apart."""
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in order if p != "warm"}
    for path in order:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                path,
                *wiki_args,
                "--backend",
                args.backend,
                "--cache",
                args.cache,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            results[path] = {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if path == "warm":
            # The int8 export on a cold cache, a load otherwise: once per machine, not an ingest's cost.
            results["model_cache_warmup_s"] = result["seconds"]
        else:
            runs[path].append(result)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=27, help="sample wiki copies (38 pages each)")
    parser.add_argument(
        "--corpus", default="", help="a real corpus folder (space.json) instead of the sample"
    )
    parser.add_argument("--pages", type=int, default=0, help="with --corpus: this many pages (0: all)")
    parser.add_argument("--paths", default="old,new", help="comma-separated: old, new")
    parser.add_argument("--backend", default="auto", help="new path's EMBED_BACKEND")
    parser.add_argument(
        "--cache", default=str(ROOT / ".bench-cache"), help="model cache (int8 export) folder"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each path, alternating")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from bot.runtime import harden_environment

    harden_environment()  # as `wikibot` does at start-up, before any library is imported

    if args.worker:
        data = Path(tempfile.mkdtemp(prefix="wikibot-bench-"))
        # A worker is handed the sliced wiki folder itself; the corpus is copied once per benchmark.
        wiki = Path(args.corpus) if args.corpus else None
        try:
            if args.worker == "warm":
                result: dict[str, Any] = {"seconds": warm_model_cache(Path(args.cache), args.backend)}
            elif args.worker == "old":
                result = run_old(args.copies, data, wiki)
            else:
                result = run_new(args.copies, data, args.backend, Path(args.cache), wiki)
        finally:
            shutil.rmtree(data, ignore_errors=True)
        print(json.dumps(result))
        return

    results: dict[str, Any] = {"cpus": os.cpu_count()}
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    order = (["warm"] if "new" in paths else []) + paths * max(1, args.repeat)
    if args.corpus:
        slice_dir = Path(tempfile.mkdtemp(prefix="wikibot-bench-wiki-"))
        try:
            entries = slice_corpus(Path(args.corpus), args.pages, slice_dir)
            spaces = sorted({str(e.get("space", "")) for e in entries})
            results["corpus"] = {"path": args.corpus, "pages": len(entries), "spaces": spaces}
            runs = _alternate(order, ["--corpus", str(slice_dir), "--copies", "1"], args, results)
        finally:
            shutil.rmtree(slice_dir, ignore_errors=True)
    else:
        results["copies"] = args.copies
        runs = _alternate(order, ["--copies", str(args.copies)], args, results)
    for path, done in runs.items():
        if done:
            # The run with the median time stands for the path; every run's time is kept beside it.
            done.sort(key=lambda r: r["seconds"])
            results[path] = {**done[(len(done) - 1) // 2], "runs_s": [r["seconds"] for r in done]}
            results[path]["seconds"] = round(statistics.median(r["seconds"] for r in done), 2)
            for unit in ("pages", "chunks"):
                results[path][f"{unit}_per_s"] = round(results[path][unit] / results[path]["seconds"], 2)
    if "seconds" in results.get("old", {}) and "seconds" in results.get("new", {}):
        old, new = results["old"], results["new"]
        results["speedup_end_to_end"] = round(old["seconds"] / new["seconds"], 2)
        results["speedup_pages_per_s"] = round(new["pages_per_s"] / old["pages_per_s"], 2)
        results["peak_rss_ratio"] = round(new["peak_rss_mb"] / old["peak_rss_mb"], 2)
        results["chunks_ratio"] = round(new["chunks"] / old["chunks"], 2)
        results["resync_vs_full_ingest"] = round(new["resync_unchanged"]["seconds"] / new["seconds"], 4)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
