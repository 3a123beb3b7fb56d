"""Hybrid retrieval: dense (Chroma) and lexical (BM25), fused by reciprocal rank, at most N per page."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from rag.chunking import embedding_text
from rag.knowledge import KnowledgeBase
from rag.lexical import LexicalIndex
from rag.ports import Embedder
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

# The usual RRF constant: damps the head so one list cannot dominate.
RRF_K = 60


@dataclass(frozen=True, slots=True)
class Retrieved:
    hits: tuple[Hit, ...]
    # Cosine similarity of the best dense match: how close the wiki came to the question at all.
    best_similarity: float
    # False when the index was built by another embedding model (a rebuild is pending): lexical only.
    dense_used: bool = True


def fuse(rankings: Sequence[Sequence[Chunk]], *, k: int, max_per_page: int) -> list[Hit]:
    scores: dict[str, float] = {}
    by_id: dict[str, Chunk] = {}
    for ranking in rankings:
        for rank, chunk in enumerate(ranking):
            scores[chunk.chunk_id] = scores.get(chunk.chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
            by_id[chunk.chunk_id] = chunk
    hits: list[Hit] = []
    per_page: dict[str, int] = {}
    for chunk_id in sorted(scores, key=lambda c: (-scores[c], c)):
        chunk = by_id[chunk_id]
        if per_page.get(chunk.page_id, 0) >= max_per_page:
            continue
        per_page[chunk.page_id] = per_page.get(chunk.page_id, 0) + 1
        hits.append(Hit(chunk=chunk, score=scores[chunk_id]))
        if len(hits) == k:
            break
    return hits


class HybridRetriever:
    """Blocking: callers on the event loop run `search` in a thread."""

    def __init__(
        self,
        kb: KnowledgeBase,
        embedder: Embedder,
        *,
        k: int,
        max_per_page: int,
        mode: str = "hybrid",
        lexical: LexicalIndex | None = None,
    ) -> None:
        if mode not in ("hybrid", "dense", "lexical"):
            raise ValueError(f"unknown retrieval mode {mode!r}")
        self._kb = kb
        self._embedder = embedder
        self._k = k
        self._max_per_page = max_per_page
        self._mode = mode
        self._lexical = lexical or LexicalIndex()
        self._warned_for: str | None = None

    def ready(self) -> bool:
        index = self._kb.active()
        return index is not None and index.count() > 0

    def search(self, query: str, *, k: int | None = None) -> Retrieved:
        k = k or self._k
        index = self._kb.active()
        if index is None:
            return Retrieved((), 0.0)
        candidates = max(4 * k, 20)
        dense: list[tuple[Chunk, float]] = []
        lexical: list[tuple[Chunk, float]] = []
        # Query vectors of one model against an index of another are meaningless (or of another size):
        # until the rebuild is done, lexical retrieval answers alone.
        use_dense = self._mode in ("hybrid", "dense") and self._same_model()
        if use_dense:
            dense = index.query(self._embedder.embed_query(embedding_text(query)), k=candidates)
        if self._mode in ("hybrid", "lexical") or not use_dense:
            key = (index.name, self._kb.state.revision())
            lexical = self._lexical.search(query, key=key, load=index.all_chunks, k=candidates)
        rankings = [[c for c, _ in dense], [c for c, _ in lexical]]
        hits = fuse([r for r in rankings if r], k=k, max_per_page=self._max_per_page)
        best_similarity = max((1.0 - d for _, d in dense), default=0.0)
        return Retrieved(tuple(hits), best_similarity, dense_used=use_dense)

    def _same_model(self) -> bool:
        built_with = self._kb.state.get("active_fingerprint")
        if built_with == self._embedder.fingerprint:
            return True
        if built_with == self._warned_for:
            return False
        self._warned_for = built_with
        log.warning(
            "the index was built with %s but the embedder is %s: lexical retrieval only until it is rebuilt",
            built_with,
            self._embedder.fingerprint,
        )
        return False
