"""Answer quality on a real corpus, in extractive mode, through the real pipeline; prints JSON.

    python bench/corpus.py                 # once: builds bench/.corpus (Python's and git's manuals)
    python bench/quality.py                # ingests it (incrementally, kept in bench/.quality-data), then asks
    python bench/quality.py --sample       # the bundled sample wiki and bench/questions.json instead
    python bench/quality.py --kinds french,followup --show-misses

Questions (`bench/quality_set/*.json`) name their gold pages by key (`py:library/json`); `space.json` of the
corpus maps keys to page ids. Single questions are asked in a fresh session; follow-ups and topic switches
first ask their history in one session through `WikiAssistant.ask` (so the session holds real turns), then
retrieve the question in that session, the path an answer takes. Reported per kind: recall@1, recall@5
(a gold page among the first five distinct pages) and MRR@10; abstention (share of unanswerable questions
answered "not in the wiki", share of answerable ones wrongly refused); language detection accuracy;
retrieval latency p50/p95 (warm).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USER, PASSWORD = "bench@example.com", "bench"
ANSWERABLE = ("plain", "code", "table", "french", "followup", "topic_switch")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_questions(folder: Path, keys: dict[str, str]) -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        for q in json.loads(path.read_text(encoding="utf-8")):
            missing = [p for p in q["pages"] if p not in keys]
            if missing:
                raise SystemExit(f"{path.name} {q['id']}: unknown gold pages {missing}")
            questions.append({**q, "page_ids": [keys[p] for p in q["pages"]]})
    return questions


def sample_questions() -> list[dict[str, Any]]:
    raw = json.loads((ROOT / "bench" / "questions.json").read_text(encoding="utf-8"))
    return [
        {
            "id": f"sample-{n}",
            "kind": "french" if q.get("lang") == "fr" else "plain",
            "lang": q.get("lang", "en"),
            "question": q["question"],
            "page_ids": [str(p) for p in q["page_ids"]],
        }
        for n, q in enumerate(raw, start=1)
    ]


def _rank(hits: Any, expected: set[str]) -> int | None:
    pages: list[str] = []
    for hit in hits:
        if hit.chunk.page_id not in pages:
            pages.append(hit.chunk.page_id)
    return next((i + 1 for i, p in enumerate(pages[:10]) if p in expected), None)


def _summary(ranks: list[int | None]) -> dict[str, float | int]:
    n = len(ranks)
    if not n:
        return {"n": 0}
    return {
        "n": n,
        "recall_at_1": round(sum(r == 1 for r in ranks) / n, 3),
        "recall_at_5": round(sum(r is not None and r <= 5 for r in ranks) / n, 3),
        "mrr_at_10": round(sum(1 / r for r in ranks if r) / n, 3),
    }


async def run(
    core: Any, questions: list[dict[str, Any]], show_misses: bool, dump: list[dict[str, Any]]
) -> dict[str, Any]:
    from rag.language import LanguageDetector
    from rag.types import IncomingMessage

    detect_language = LanguageDetector().detect

    assistant = core.assistant

    async def retrieve(session: str, question: str) -> Any:
        history = await assistant.history(session)
        return await core.answerer.retrieve(question, history, k=20)

    await retrieve("warm", "warm up")
    ranks: dict[str, list[int | None]] = {}
    alone: list[int | None] = []
    latencies: list[float] = []
    refused_unanswerable = 0
    refused_answerable: list[str] = []
    unanswerable = answerable = 0
    language_ok = 0
    misses: list[dict[str, Any]] = []
    for q in questions:
        language_ok += detect_language(q["question"]) == q.get("lang", "en")
        session = f"q-{uuid.uuid4().hex}"
        for earlier in q.get("history", []):
            await assistant.ask(IncomingMessage(session_key=session, text=earlier))
        message = IncomingMessage(session_key=session, text=q["question"])
        t0 = time.perf_counter()
        retrieved = await retrieve(session, q["question"])
        latencies.append((time.perf_counter() - t0) * 1000)
        reply = await assistant.ask(message)
        refused = not reply.sources
        dump.append(
            {
                "id": q["id"],
                "kind": q["kind"],
                "lang": q.get("lang", "en"),
                "rank": _rank(retrieved.hits, set(q["page_ids"])) if q["page_ids"] else None,
                "refused": refused,
                "dense": round(retrieved.best_similarity, 4),
                "rerank": None if retrieved.rerank_score is None else round(retrieved.rerank_score, 3),
                "translated": retrieved.translated,
                "unseen_names": list(retrieved.unseen_names),
            }
        )
        if q["kind"] == "unanswerable":
            unanswerable += 1
            refused_unanswerable += refused
            if show_misses and not refused:
                misses.append({"id": q["id"], "question": q["question"], "got": reply.sources[0].title})
            continue
        answerable += 1
        if refused:
            refused_answerable.append(q["id"])
        expected = set(q["page_ids"])
        rank = _rank(retrieved.hits, expected)
        ranks.setdefault(q["kind"], []).append(rank)
        if q["kind"] == "followup":
            solo = await retrieve(f"solo-{session}", q["question"])
            alone.append(_rank(solo.hits, expected))
        if show_misses and (rank is None or rank > 1):
            got = list(dict.fromkeys(h.chunk.title for h in retrieved.hits))[:3]
            misses.append({"id": q["id"], "rank": rank, "question": q["question"], "got": got})
    everything = [r for kind in ANSWERABLE for r in ranks.get(kind, [])]
    single = [r for kind in ("plain", "code", "table", "french") for r in ranks.get(kind, [])]
    out: dict[str, Any] = {
        "questions": len(questions),
        "overall": _summary(everything),
        "single_turn": _summary(single),
        "by_kind": {kind: _summary(ranks[kind]) for kind in ANSWERABLE if kind in ranks},
    }
    if alone:
        out["followup_asked_alone"] = _summary(alone)
    out["abstention"] = {
        "unanswerable": unanswerable,
        "unanswerable_abstained": round(refused_unanswerable / unanswerable, 3) if unanswerable else None,
        "answerable": answerable,
        "answerable_refused": round(len(refused_answerable) / answerable, 3) if answerable else None,
        "answerable_refused_ids": refused_answerable,
    }
    out["language_detection_accuracy"] = round(language_ok / len(questions), 3)
    out["retrieval_ms_p50"] = round(statistics.median(latencies), 1)
    out["retrieval_ms_p95"] = round(_percentile(latencies, 0.95), 1)
    if show_misses:
        out["misses"] = misses
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=str(ROOT / "bench" / ".corpus"))
    parser.add_argument("--questions", default=str(ROOT / "bench" / "quality_set"))
    parser.add_argument("--data", default=None, help="index folder (default: bench/.quality-data[-sample])")
    parser.add_argument("--sample", action="store_true", help="the sample wiki and bench/questions.json")
    parser.add_argument("--kinds", default="", help="only these kinds (comma-separated)")
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--cache", default=str(ROOT / ".bench-cache"))
    parser.add_argument(
        "--rerank", action=argparse.BooleanOptionalAction, default=True, help="the cross-encoder stage"
    )
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--dump", default="", help="write each question's rank and signals to this file")
    args = parser.parse_args()
    from bot.runtime import start_process

    start_process(log_level="WARNING")  # as `wikibot` starts, before any library is imported
    from bot.app import build_core
    from bot.config import load_settings
    from bot.demo.confluence_fake import ConfluenceFake

    if args.sample:
        wiki_dir, spaces = None, "LUMEN"
        questions = sample_questions()
        data = Path(args.data or ROOT / "bench" / ".quality-data-sample")
    else:
        wiki_dir = Path(args.corpus)
        if not (wiki_dir / "space.json").is_file():
            raise SystemExit(f"no corpus at {wiki_dir}: run `python bench/corpus.py` first")
        entries = json.loads((wiki_dir / "space.json").read_text(encoding="utf-8"))
        spaces = ",".join(sorted({e["space"] for e in entries}))
        questions = load_questions(Path(args.questions), {e["key"]: e["id"] for e in entries})
        data = Path(args.data or ROOT / "bench" / ".quality-data")
    if args.kinds:
        wanted = set(args.kinds.split(","))
        questions = [q for q in questions if q["kind"] in wanted]
    with ConfluenceFake(username=USER, password=PASSWORD, wiki_dir=wiki_dir) as fake:
        settings = load_settings(
            confluence_url=fake.base_url,
            confluence_username=USER,
            confluence_password=PASSWORD,
            confluence_space=spaces,
            data_dir=data,
            embed_backend=args.backend,
            embed_cache_dir=Path(args.cache),
            retrieval_rerank=args.rerank,
        )
        core = build_core(settings)
        try:
            t0 = time.perf_counter()
            report = core.sync()
            if not report.ok:
                raise SystemExit(f"ingest failed: {report}")
            result: dict[str, Any] = {
                "corpus": "sample" if args.sample else str(wiki_dir),
                "pages": report.added + report.updated + report.unchanged,
                "chunks_embedded": report.chunks_embedded,
                "timing_s": {
                    "fetch": report.fetch_s,
                    "chunk": report.chunk_s,
                    "embed": report.embed_s,
                    "write": report.write_s,
                },
                "chunks": report.chunks_total,
                "sync_s": round(time.perf_counter() - t0, 1),
            }
            dump: list[dict[str, Any]] = []
            if questions:
                result.update(asyncio.run(run(core, questions, args.show_misses, dump)))
            if args.dump:
                Path(args.dump).write_text(json.dumps(dump, indent=0), encoding="utf-8")
        finally:
            core.close()
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
