"""Retrieval benchmark on the sample wiki's question set; prints JSON.

    python bench/query.py                      # both embedding backends, hybrid vs dense vs lexical
    python bench/query.py --backends onnx-int8 --copies 10

For each backend: ingest the sample wiki (times --copies, so latency is measured on a bigger index) through
the loopback Confluence fake, then ask every question of bench/questions.json and report recall@5 (an
expected page among the top five distinct pages), MRR, and retrieval latency p50/p95 (warm).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USER, PASSWORD = "bench@example.com", "bench"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def evaluate(backend: str, copies: int, cache: Path) -> dict[str, Any]:
    from bot.app import build_core
    from bot.config import load_settings
    from bot.demo.confluence_fake import ConfluenceFake
    from rag.retrieval import HybridRetriever
    from rag.types import IncomingMessage

    questions = json.loads((ROOT / "bench" / "questions.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    with (
        ConfluenceFake(username=USER, password=PASSWORD, copies=copies) as fake,
        tempfile.TemporaryDirectory() as d,
    ):
        settings = load_settings(
            confluence_url=fake.base_url,
            confluence_username=USER,
            confluence_password=PASSWORD,
            confluence_space="LUMEN",
            data_dir=Path(d),
            embed_backend=backend,
            embed_cache_dir=cache,
        )
        core = build_core(settings)
        report = core.sync()
        out["embedder"] = core.kb.summary().fingerprint
        out["pages"], out["chunks"] = report.added, report.chunks_total
        for mode in ("hybrid", "dense", "lexical"):
            retriever = HybridRetriever(
                core.kb, core.embedder, k=5, max_per_page=2, lexical=core.lexical, mode=mode
            )
            retriever.search("warm up")
            hits_at_5 = 0
            reciprocal = 0.0
            latencies: list[float] = []
            by_lang: dict[str, list[int]] = {}
            for q in questions:
                t0 = time.perf_counter()
                hits = retriever.search(q["question"], k=10).hits
                latencies.append((time.perf_counter() - t0) * 1000)
                pages: list[str] = []
                for h in hits:
                    # A copy of a page answers as well as the original.
                    base = str(int(h.chunk.page_id) % 1_000_000)
                    if base not in pages:
                        pages.append(base)
                expected = set(q["page_ids"])
                rank = next((i + 1 for i, p in enumerate(pages) if p in expected), None)
                found = rank is not None and rank <= 5
                hits_at_5 += found
                reciprocal += 1 / rank if rank else 0.0
                by_lang.setdefault(q.get("lang", "en"), []).append(int(found))
            out[mode] = {
                "recall_at_5": round(hits_at_5 / len(questions), 3),
                "mrr": round(reciprocal / len(questions), 3),
                "recall_at_5_by_language": {k: round(sum(v) / len(v), 3) for k, v in by_lang.items()},
                "latency_ms_p50": round(statistics.median(latencies), 1),
                "latency_ms_p95": round(_percentile(latencies, 0.95), 1),
            }
        # The whole answer path without a model (extractive), as the demo runs it.
        t: list[float] = []
        for q in questions[:20]:
            t0 = time.perf_counter()
            asyncio.run(
                core.assistant.ask(IncomingMessage(session_key=f"b{time.time()}", text=q["question"]))
            )
            t.append((time.perf_counter() - t0) * 1000)
        out["ask_extractive_ms_p50"] = round(statistics.median(t), 1)
        out["ask_extractive_ms_p95"] = round(_percentile(t, 0.95), 1)
        core.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="torch,onnx-int8")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--cache", default=str(ROOT / ".bench-cache"))
    args = parser.parse_args()
    from bot.runtime import start_process

    start_process(log_level="WARNING")  # as `wikibot` starts, before any library is imported
    result: dict[str, Any] = {"questions": len(json.loads((ROOT / "bench" / "questions.json").read_text()))}
    result["copies"] = args.copies
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        result[backend] = evaluate(backend, args.copies, Path(args.cache))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
