"""Hybrid retrieval: dense (Chroma) and lexical (BM25), fused by reciprocal rank, at most N per page."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.chunking import embedding_text
from rag.crosslingual import HeadingIndex
from rag.index import ChromaIndex
from rag.knowledge import KnowledgeBase
from rag.lexical import LexicalIndex, tokenize
from rag.ports import Embedder
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

# The usual RRF constant: damps the head so one list cannot dominate.
RRF_K = 60
DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0
HEADING_WEIGHT = 1.0
# Passages whose words count for the question's coverage.
COVERAGE_HITS = 3


@dataclass(frozen=True, slots=True)
class Retrieved:
    hits: tuple[Hit, ...]
    # Cosine similarity of the best dense match: how close the wiki came to the question at all.
    best_similarity: float
    # False when the index was built by another embedding model (a rebuild is pending): lexical only.
    dense_used: bool = True
    # Cosine similarity of the best multilingual heading match (0 without a heading index).
    heading_similarity: float = 0.0
    # IDF-weighted share of the question's words found in the best passages: words the wiki never uses
    # ("Terraform", "OpenShift") say it does not hold the answer, whatever the nearest vectors are.
    coverage: float = 1.0


@dataclass(frozen=True, slots=True)
class _Ranking:
    kind: str  # "dense", "lexical" or "heading"
    ranking: list[Chunk]
    weight: float
    best: float  # best similarity, for dense and heading rankings


def fuse(
    rankings: Sequence[Sequence[Chunk]],
    *,
    k: int,
    max_per_page: int,
    weights: Sequence[float] | None = None,
) -> list[Hit]:
    scores: dict[str, float] = {}
    by_id: dict[str, Chunk] = {}
    for n, ranking in enumerate(rankings):
        weight = weights[n] if weights else 1.0
        for rank, chunk in enumerate(ranking):
            scores[chunk.chunk_id] = scores.get(chunk.chunk_id, 0.0) + weight / (RRF_K + rank + 1)
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
        headings: HeadingIndex | None = None,
    ) -> None:
        if mode not in ("hybrid", "dense", "lexical"):
            raise ValueError(f"unknown retrieval mode {mode!r}")
        self._kb = kb
        self._embedder = embedder
        self._k = k
        self._max_per_page = max_per_page
        self._mode = mode
        self._lexical = lexical or LexicalIndex()
        self._headings = headings
        self._warned_for: str | None = None
        self._corpus_lock = threading.Lock()
        self._corpus_key: tuple[str, int] | None = None
        self._corpus: list[Chunk] = []

    def ready(self) -> bool:
        index = self._kb.active()
        return index is not None and index.count() > 0

    def warm(self) -> None:
        """Builds what the first question would otherwise wait for (BM25, heading vectors)."""
        self.search("warm up", k=1)

    def search(self, query: str, *, k: int | None = None, context: str = "") -> Retrieved:
        """The k best passages for query. With a context (the conversation's previous question), passages
        for the query alone and for the query read in that context are fused: a follow-up that may or may
        not lean on its context finds both."""
        k = k or self._k
        index = self._kb.active()
        if index is None:
            return Retrieved((), 0.0)
        key = (index.name, self._kb.state.revision())

        def corpus() -> list[Chunk]:
            # BM25 and the heading index both derive from every chunk: read them once per revision.
            with self._corpus_lock:
                if self._corpus_key != key:
                    self._corpus, self._corpus_key = index.all_chunks(), key
                return self._corpus

        # Query vectors of one model against an index of another are meaningless (or of another size):
        # until the rebuild is done, lexical retrieval answers alone.
        use_dense = self._mode in ("hybrid", "dense") and self._same_model()
        signals = self._rankings(query, index, key, corpus, k=k, use_dense=use_dense)
        if context.strip():
            signals += self._rankings(f"{context}\n{query}", index, key, corpus, k=k, use_dense=use_dense)
        hits = fuse(
            [s.ranking for s in signals if s.ranking],
            k=k,
            max_per_page=self._max_per_page,
            weights=[s.weight for s in signals if s.ranking],
        )
        coverage = self._lexical.coverage(tokenize(query), [h.chunk for h in hits[:COVERAGE_HITS]])
        return Retrieved(
            tuple(hits),
            max((s.best for s in signals if s.kind == "dense"), default=0.0),
            dense_used=use_dense,
            heading_similarity=max((s.best for s in signals if s.kind == "heading"), default=0.0),
            coverage=coverage,
        )

    def _rankings(
        self,
        query: str,
        index: ChromaIndex,
        key: tuple[str, int],
        corpus: Callable[[], list[Chunk]],
        *,
        k: int,
        use_dense: bool,
    ) -> list[_Ranking]:
        candidates = max(4 * k, 20)
        out: list[_Ranking] = []
        if use_dense:
            dense = index.query(self._embedder.embed_query(embedding_text(query)), k=candidates)
            best = max((1.0 - d for _, d in dense), default=0.0)
            out.append(_Ranking("dense", [c for c, _ in dense], DENSE_WEIGHT, best))
        if self._mode in ("hybrid", "lexical") or not use_dense:
            lexical = self._lexical.search(query, key=key, load=corpus, k=candidates)
            out.append(_Ranking("lexical", [c for c, _ in lexical], LEXICAL_WEIGHT, 0.0))
        if self._headings is not None and self._mode == "hybrid":
            by_heading = self._headings.search(query, key=key, load=corpus, k=candidates)
            best = max((s for _, s in by_heading), default=0.0)
            out.append(_Ranking("heading", [c for c, _ in by_heading], HEADING_WEIGHT, best))
        return out

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
