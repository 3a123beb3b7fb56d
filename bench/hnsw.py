"""Dense search at scale: Chroma's HNSW settings measured for recall against exact search, and latency; prints JSON.

    python bench/quality.py                        # once: builds bench/.quality-data (the real vectors)
    python bench/hnsw.py                           # 10k and 100k vectors, ef_search 10..200
    python bench/hnsw.py --sizes 20000,100000 --ef 20,50,100 --m 16,32

Vectors are the real chunk vectors of the quality index (bench/.quality-data: about 20k chunks of Python's
and git's manuals, embedded by the deployment's model). Sizes beyond them are made of noisy copies of the
real vectors (each copy at cosine ~0.85 to its original: distinct chunks on the same topics, as copied and
edited pages are), which is a hard case for a graph index, not an easy one: clusters of near neighbours.
Queries are the quality set's questions, embedded as a search embeds them. For each size and each
construction setting (M = `max_neighbors`, `ef_construction`), an embedded Chroma collection is built once
(build_s), then queried at each `ef_search` (changed in place with `collection.modify`, as an operator can):

- recall_at_20: the share of the exact 20 nearest chunks (numpy, cosine; a tie with the 20th counts) that
  HNSW returns (20 = the retriever's dense candidates for k = 5), and recall_at_5 of its first five;
- query_p50_ms, query_p95_ms: one `query` as rag/index.py asks it (k = 20, with documents and metadata).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

K = 20
NOISE_COSINE = 0.85
Matrix = npt.NDArray[np.float32]


def real_vectors(data: Path) -> tuple[Matrix, list[str], list[dict[str, Any]]]:
    """Every chunk vector (with its text and metadata) of the quality index's active collection."""
    from rag.index import open_chroma

    client = open_chroma(path=data / "chroma")
    collections = sorted(client.list_collections(), key=lambda c: c.count(), reverse=True)
    if not collections:
        raise SystemExit(f"no collection under {data}: run `python bench/quality.py` first")
    collection = collections[0]
    vectors: list[Matrix] = []
    docs: list[str] = []
    metas: list[dict[str, Any]] = []
    offset = 0
    while True:
        got = collection.get(include=["embeddings", "documents", "metadatas"], limit=5000, offset=offset)
        if not got["ids"]:
            break
        vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
        docs.extend(got["documents"] or [])
        metas.extend(dict(m or {}) for m in got["metadatas"] or [])
        offset += len(got["ids"])
    matrix = np.concatenate(vectors)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True), docs, metas


def grown(real: Matrix, size: int, seed: int = 0) -> tuple[Matrix, list[int]]:
    """`size` unit vectors: the real ones first, then noisy copies; and each row's original row."""
    rng = np.random.default_rng(seed)
    rows = [real[: min(size, len(real))]]
    origin = list(range(min(size, len(real))))
    # Noise of this norm, orthogonal on average, puts a copy at cosine NOISE_COSINE to its original.
    scale = float(np.tan(np.arccos(NOISE_COSINE)) / np.sqrt(real.shape[1]))
    while sum(len(r) for r in rows) < size:
        take = min(len(real), size - sum(len(r) for r in rows))
        noisy = real[:take] + rng.normal(0.0, scale, size=(take, real.shape[1])).astype(np.float32)
        rows.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        origin.extend(range(take))
    return np.concatenate(rows).astype(np.float32), origin


def question_vectors() -> Matrix:
    from rag.chunking import embedding_text
    from rag.embedding import build_embedder

    embedder = build_embedder(
        "all-MiniLM-L6-v2", backend="auto", cache_dir=ROOT / ".bench-cache", batch_size=32
    )
    asked = [
        q["question"]
        for file in sorted((ROOT / "bench" / "quality_set").glob("*.json"))
        for q in json.loads(file.read_text(encoding="utf-8"))
    ]
    matrix = np.asarray([embedder.embed_query(embedding_text(q)) for q in asked], dtype=np.float32)
    embedder.close()
    return matrix


def measure(
    vectors: Matrix,
    origin: list[int],
    docs: list[str],
    metas: list[dict[str, Any]],
    queries: Matrix,
    *,
    m: int,
    ef_construction: int,
    efs: list[int],
) -> dict[str, Any]:
    import chromadb
    from chromadb.api.client import SharedSystemClient

    similarities = queries @ vectors.T
    exact = np.argsort(-similarities, axis=1)[:, :K]
    # Identical chunks (a paragraph repeated on several pages) tie: any of them is a right answer.
    kth = {n: similarities[np.arange(len(queries)), exact[:, n - 1]] - 1e-5 for n in (5, K)}
    with tempfile.TemporaryDirectory(prefix="wikibot-hnsw-") as work:
        client = chromadb.PersistentClient(path=work)
        collection = client.create_collection(
            "bench-hnsw",
            embedding_function=None,
            configuration={
                "hnsw": {"space": "cosine", "max_neighbors": m, "ef_construction": ef_construction}
            },
        )
        t0 = time.perf_counter()
        for start in range(0, len(vectors), 5000):
            stop = min(len(vectors), start + 5000)
            collection.add(
                ids=[str(i) for i in range(start, stop)],
                embeddings=vectors[start:stop],
                documents=[docs[origin[i]] for i in range(start, stop)],
                metadatas=[metas[origin[i]] for i in range(start, stop)],
            )
        collection.query(query_embeddings=queries[:1], n_results=K)  # the first query loads the index
        build_s = time.perf_counter() - t0
        by_ef: dict[str, Any] = {}
        for ef in efs:
            collection.modify(configuration={"hnsw": {"ef_search": ef}})
            # A loaded index keeps the ef_search it was loaded with (chromadb 1.5.9): only a new client
            # (a restarted process) searches with the new value.
            SharedSystemClient.clear_system_cache()
            client = chromadb.PersistentClient(path=work)
            collection = client.get_collection("bench-hnsw", embedding_function=None)
            collection.query(query_embeddings=queries[:1], n_results=K)
            latencies: list[float] = []
            found_20 = found_5 = 0
            for qi in range(len(queries)):
                t0 = time.perf_counter()
                got = collection.query(
                    query_embeddings=queries[qi : qi + 1],
                    n_results=K,
                    include=["documents", "metadatas", "distances"],
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                ids = [int(i) for i in got["ids"][0]]
                found_20 += int((similarities[qi, ids] >= kth[K][qi]).sum())
                found_5 += int((similarities[qi, ids[:5]] >= kth[5][qi]).sum())
            latencies.sort()
            by_ef[str(ef)] = {
                "recall_at_20": round(found_20 / (K * len(queries)), 4),
                "recall_at_5": round(found_5 / (5 * len(queries)), 4),
                "query_p50_ms": round(statistics.median(latencies), 2),
                "query_p95_ms": round(latencies[round(0.95 * (len(latencies) - 1))], 2),
            }
    return {"m": m, "ef_construction": ef_construction, "build_s": round(build_s, 1), "ef_search": by_ef}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(ROOT / "bench" / ".quality-data"), help="the quality index")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--ef", default="10,20,50,100,200", help="ef_search values")
    parser.add_argument("--m", default="16", help="max_neighbors values (Chroma's default: 16)")
    parser.add_argument("--ef-construction", default="100", help="ef_construction values (default: 100)")
    args = parser.parse_args()
    real, docs, metas = real_vectors(Path(args.data))
    queries = question_vectors()
    efs = [int(x) for x in args.ef.split(",")]
    out: dict[str, Any] = {"real_vectors": len(real), "questions": len(queries), "k": K, "runs": []}
    for size in (int(x) for x in args.sizes.split(",")):
        vectors, origin = grown(real, size)
        for m in (int(x) for x in args.m.split(",")):
            for efc in (int(x) for x in args.ef_construction.split(",")):
                result = measure(vectors, origin, docs, metas, queries, m=m, ef_construction=efc, efs=efs)
                out["runs"].append({"vectors": size, **result})
                print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
