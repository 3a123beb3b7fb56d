"""Torch fp32 against ONNX int8 for the embedder: speed, memory, agreement and retrieval quality.

    .venv/bin/python bench/embedders.py [--texts 1000] [--batch-size 32]

Each backend runs in its own process so that peak RSS is its own. Texts are the sample wiki's pages
(bot/demo/sample_wiki) cut by `rag.chunking.chunk_page` and read through `embedding_text`, as an ingest does
(CHUNK_SIZE 1000, overlap 150, token-aware); with bench/questions.json, recall@5 and MRR of brute-force
cosine search over those chunks are reported per backend (a hit is a chunk of a relevant page).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.demo.confluence_fake import SAMPLE_WIKI_DIR  # noqa: E402
from rag.chunking import chunk_page, embedding_text  # noqa: E402
from rag.embedding import build_embedder, resolve_model  # noqa: E402
from rag.types import Page  # noqa: E402

WIKI = SAMPLE_WIKI_DIR
QUESTIONS = ROOT / "bench" / "questions.json"


def wiki_chunks(chunk_size: int = 1000, overlap: int = 150, window: int = 256) -> list[tuple[str, str]]:
    """(page_id, text) chunks of each page, sized in characters and tokens as bot/app.py sizes them."""
    from tokenizers import Tokenizer

    counter = Tokenizer.from_file(str(resolve_model("all-MiniLM-L6-v2").path / "tokenizer.json"))
    counter.no_truncation()
    counter.no_padding()
    scale = chunk_size / window

    def length(text: str) -> int:
        return max(len(text), math.ceil(len(counter.encode(text).ids) * scale))

    out: list[tuple[str, str]] = []
    for entry in json.loads((WIKI / "space.json").read_text(encoding="utf-8")):
        page = Page(
            page_id=str(entry["id"]),
            space="LUMEN",
            title=str(entry["title"]),
            version=1,
            url="http://wiki.invalid/",
            body=(WIKI / entry["file"]).read_text(encoding="utf-8"),
        )
        chunks = chunk_page(page, chunk_size=chunk_size, chunk_overlap=overlap, length_function=length)
        out += [(c.page_id, embedding_text(c.text)) for c in chunks]
    return out


def worker(backend: str, cache_dir: Path, texts_path: Path, out_path: Path, batch_size: int) -> None:
    texts: list[str] = json.loads(texts_path.read_text(encoding="utf-8"))
    questions = (
        [embedding_text(q["question"]) for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))]
        if QUESTIONS.exists()
        else []
    )
    started = time.perf_counter()
    emb = build_embedder("all-MiniLM-L6-v2", backend=backend, cache_dir=cache_dir, batch_size=batch_size)  # type: ignore[arg-type]
    build_s = time.perf_counter() - started
    emb.embed_documents(texts[:8])  # warm-up: first-run allocations and kernel selection
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = emb.embed_documents(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    qvecs = [emb.embed_query(q) for q in questions]
    np.save(out_path.with_suffix(".docs.npy"), np.asarray(vectors, dtype=np.float32))
    np.save(
        out_path.with_suffix(".queries.npy"), np.asarray(qvecs, dtype=np.float32).reshape(len(questions), -1)
    )
    out_path.write_text(
        json.dumps(
            {
                "fingerprint": emb.fingerprint,
                "exported": emb.exported,
                "build_s": round(build_s, 2),
                "texts_per_s": round(len(texts) / wall, 1),
                "texts_per_cpu_s": round(len(texts) / cpu, 1),
                "truncated": emb.truncated,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        ),
        encoding="utf-8",
    )


def retrieval(docs: np.ndarray, queries: np.ndarray, page_ids: list[str], k: int = 5) -> dict[str, float]:
    relevant = [set(q["page_ids"]) for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))]
    recall, rr = 0.0, 0.0
    for qv, want in zip(queries, relevant, strict=True):
        ranked: list[str] = []
        for i in np.argsort(-(docs @ qv)):
            if page_ids[i] not in ranked:
                ranked.append(page_ids[i])
            if len(ranked) == k:
                break
        recall += len(want & set(ranked)) / len(want)
        rr += next((1 / (r + 1) for r, p in enumerate(ranked) if p in want), 0.0)
    return {"recall_at_5": round(recall / len(relevant), 3), "mrr": round(rr / len(relevant), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--worker", nargs=4, metavar=("BACKEND", "CACHE", "TEXTS", "OUT"))
    args = parser.parse_args()
    if args.worker:
        backend, cache, texts, out = args.worker
        worker(backend, Path(cache), Path(texts), Path(out), args.batch_size)
        return

    windows = wiki_chunks()
    page_ids = [p for p, _ in windows]
    texts = [t for _, t in windows]
    while len(texts) < args.texts:  # the sample wiki is small: repeat with a marker so texts stay distinct
        texts += [f"{t} ({len(texts) + i})" for i, t in enumerate(texts[: args.texts - len(texts)])]
    texts = texts[: args.texts]
    report: dict[str, object] = {
        "texts": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "wiki_chunks": len(windows),
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        runs = {"torch": "torch", "onnx-int8 (first build, exports)": "onnx-int8", "onnx-int8": "onnx-int8"}
        results: dict[str, dict[str, object]] = {}
        for label, backend in runs.items():
            out = tmp / f"{len(results)}.json"
            cmd = [sys.executable, __file__, "--batch-size", str(args.batch_size)]
            cmd += ["--worker", backend, str(tmp / "cache"), str(tmp / "texts.json"), str(out)]
            subprocess.run(cmd, check=True)
            results[label] = json.loads(out.read_text(encoding="utf-8"))
            results[label]["_out"] = str(out)
        vec = {
            label: np.load(Path(str(r.pop("_out"))).with_suffix(".docs.npy")) for label, r in results.items()
        }
        cos = (vec["torch"] * vec["onnx-int8"]).sum(axis=1)
        report["backends"] = results
        report["cosine_int8_vs_fp32"] = {
            "mean": round(float(cos.mean()), 4),
            "min": round(float(cos.min()), 4),
        }
        if QUESTIONS.exists():
            n = min(len(windows), len(texts))
            quality = {}
            for i, label in ((0, "torch"), (2, "onnx-int8")):
                queries = np.load(tmp / f"{i}.queries.npy")
                quality[label] = retrieval(vec[label][:n], queries, page_ids[:n])
            report["retrieval"] = quality
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
