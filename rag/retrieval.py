"""Hybrid retrieval: dense (Chroma) and lexical (BM25, rag/lexical_index.py) candidates fused by reciprocal rank, the best few
re-scored by a cross-encoder, pages ranked by their best passages, at most N passages per page."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rag.chunking import embedding_text
from rag.crosslingual import KnownTerms, QueryTranslator
from rag.lexical import tokenize
from rag.ports import ActiveIndex, Embedder, IndexReader, LexicalIndex, Reranker
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

# Reciprocal rank fusion: score = sum of 1 / (RRF_K + rank). The usual 60 flattens the head so much that
# the first and the tenth candidate barely differ; on bench/quality_set 5 ranks the right page first more
# often (MRR@10 0.675 → 0.723 with page aggregation, recall@5 0.862 → 0.916).
RRF_K = 5
# A page's score is its best passage's score plus half its second best: a page that answers in two places
# beats one that mentions the words once, but a short page with one exact passage is not buried under a
# long one with two fair passages (a full second passage measured the same on bench/quality_set).
SECOND_PASSAGE_WEIGHT = 0.5
# BM25's vote in the fusion, against the dense model's and the cross-encoder's 1: its exact-word matches
# rescue code and names, but its rankings of prose questions are the noisiest of the three (0.6 against
# 1.0, with 16 candidates reranked: recall@5 0.886 → 0.920, MRR@10 0.728 → 0.751 on bench/quality_set).
LEXICAL_WEIGHT = 0.6
# Candidates the cross-encoder re-scores: its cost grows with each (~70 ms of CPU a pair of 256 tokens).
# 12 → 16 (lexical weight 0.6): recall@5 0.895 → 0.920 on bench/quality_set; 20 or 40 found no more.
RERANK_CANDIDATES = 16
# Passages in which the names a question uses are looked for (rag/abstention.py): about what an answer shows.
NAMES_CHECKED_IN = 5
# A word written as a name: a capital after its first letter ("GitLab", "JVM"), or an initial capital
# anywhere but at the start of a sentence ("our Splunk index").
_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
_SENTENCE_END = re.compile(r"[.!?:;]\s*$")


@dataclass(frozen=True, slots=True)
class Retrieved:
    hits: tuple[Hit, ...]
    # Cosine similarity of the best dense match: how close the wiki came to the question at all.
    best_similarity: float
    # False when the index was built by another embedding model (a rebuild is pending): lexical only.
    dense_used: bool = True
    # The cross-encoder's best score over the candidates (None without a reranker): above 0 a passage
    # answers; below about -7 none is about the question (rag/abstention.py).
    rerank_score: float | None = None
    # The question in the wiki's language, as also searched and as the cross-encoder read it ("" when the
    # question was in the wiki's language, or nothing could be rendered).
    translated: str = ""
    # What the question names ("JVM", "Splunk") that none of the first passages mentions.
    unseen_names: tuple[str, ...] = ()


def names(question: str) -> list[str]:
    """The words the question writes as names: products, places, acronyms ("Kafka", "VPN")."""
    found: list[str] = []
    for match in _WORD.finditer(question):
        word = re.sub(r"['’]s$", "", match.group()).rstrip(".")
        starts_sentence = not question[: match.start()].strip() or bool(
            _SENTENCE_END.search(question[: match.start()])
        )
        # Versions, paths, contractions and model numbers ("v2.3", "obj.area", "I'm", "G1") are left out.
        if any(c in word for c in ".-'’") or any(c.isdigit() for c in word) or len(word) < 2:
            continue
        capitals = sum(c.isupper() for c in word)
        if capitals >= 2 or (capitals == 1 and word[0].isupper() and not starts_sentence):
            found.append(word)
    return found


def unseen_names(question: str, passages: Sequence[Chunk]) -> tuple[str, ...]:
    """The question's names that none of the passages (titles included) mentions."""
    wanted = [(name, tokenize(name)) for name in names(question)]
    wanted = [(name, terms) for name, terms in wanted if terms]
    if not wanted:
        return ()
    seen = {t for chunk in passages for t in tokenize(f"{chunk.title}\n{chunk.text}")}
    return tuple(dict.fromkeys(name for name, terms in wanted if not all(t in seen for t in terms)))


def rrf(
    rankings: Sequence[Sequence[Chunk]], weights: Sequence[float] | None = None
) -> dict[str, tuple[Chunk, float]]:
    """Chunk id → (chunk, fused score) over several rankings of chunks, each with its weight (default 1)."""
    fused: dict[str, tuple[Chunk, float]] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, chunk in enumerate(ranking):
            previous = fused.get(chunk.chunk_id, (chunk, 0.0))[1]
            fused[chunk.chunk_id] = (chunk, previous + weight / (RRF_K + rank + 1))
    return fused


def by_page(scored: dict[str, tuple[Chunk, float]], *, k: int, max_per_page: int) -> list[Hit]:
    """Pages by their best passages' scores; within a page, its passages by score."""
    pages: dict[str, list[tuple[Chunk, float]]] = {}
    for chunk, score in scored.values():
        pages.setdefault(chunk.page_id, []).append((chunk, score))
    for passages in pages.values():
        passages.sort(key=lambda cs: (-cs[1], cs[0].chunk_id))

    def page_score(page_id: str) -> float:
        best = pages[page_id]
        return best[0][1] + (SECOND_PASSAGE_WEIGHT * best[1][1] if len(best) > 1 else 0.0)

    hits: list[Hit] = []
    for page_id in sorted(pages, key=lambda p: (-page_score(p), p)):
        for chunk, score in pages[page_id][:max_per_page]:
            hits.append(Hit(chunk=chunk, score=score))
            if len(hits) == k:
                return hits
    return hits


def fuse(rankings: Sequence[Sequence[Chunk]], *, k: int, max_per_page: int) -> list[Hit]:
    return by_page(rrf(rankings), k=k, max_per_page=max_per_page)


class HybridRetriever:
    """Blocking: callers on the event loop run `search` in a thread."""

    def __init__(
        self,
        index: IndexReader,
        embedder: Embedder,
        *,
        k: int,
        max_per_page: int,
        lexical: LexicalIndex,
        mode: str = "hybrid",
        reranker: Reranker | None = None,
        rerank_candidates: int = RERANK_CANDIDATES,
        translator: QueryTranslator | None = None,
        passage_language: Callable[[str], str] | None = None,
    ) -> None:
        if mode not in ("hybrid", "dense", "lexical"):
            raise ValueError(f"unknown retrieval mode {mode!r}")
        self._index = index
        self._embedder = embedder
        self._k = k
        self._max_per_page = max_per_page
        self._mode = mode
        self._lexical = lexical
        self._reranker = reranker
        self._rerank_candidates = rerank_candidates
        self._translator = translator
        # Which language a passage is written in (only asked of a translated question's candidates).
        self._passage_language = passage_language or (lambda text: "en")
        self._warned_for: str | None = None

    def ready(self) -> bool:
        active = self._index.active()
        return active is not None and active.vectors.count() > 0

    def warm(self) -> None:
        """Readies what the first question would otherwise wait for (the lexical index caught up, the reranker)."""
        if self._reranker is not None:
            self._reranker.warm()
        self.catch_up()
        self.search("warm up", k=1)

    def catch_up(self) -> None:
        """Brings the lexical index to the active collection now (after a sync, at start-up)."""
        active = self._index.active()
        if active is not None:
            self._lexical.catch_up(active)

    def search(
        self, query: str, *, k: int | None = None, context: str = "", language: str | None = None
    ) -> Retrieved:
        """The k best passages for query. With a context (the conversation's previous question), the
        candidates for the query alone and for the query read in that context are fused: a follow-up
        that may or may not lean on its context finds both. A question in the translator's language is
        also searched, and read by the cross-encoder, in the wiki's (rag/crosslingual.py)."""
        k = k or self._k
        active = self._index.active()
        if active is None:
            return Retrieved((), 0.0)
        # Query vectors of one model against an index of another are meaningless (or of another size):
        # until the rebuild is done, lexical retrieval answers alone.
        use_dense = self._mode in ("hybrid", "dense") and self._same_model(active.fingerprint)
        use_lexical = self._mode in ("hybrid", "lexical") or not use_dense
        candidates = max(4 * k, 20)
        queries = [query, f"{context}\n{query}"] if context.strip() else [query]
        vocabulary = self._vocabulary(active)
        translated = ""
        if self._translator is not None and language == self._translator.source_language:
            translated = self._translator.english(query, vocabulary)
            if translated:
                queries.append(translated)
                if context.strip():
                    queries.append(self._translator.english(f"{context}\n{query}", vocabulary))
        rankings: list[list[Chunk]] = []
        weights: list[float] = []
        best_similarity = 0.0
        for text in dict.fromkeys(q for q in queries if q.strip()):
            if use_dense:
                dense = active.vectors.query(self._embedder.embed_query(embedding_text(text)), k=candidates)
                rankings.append([c for c, _ in dense])
                weights.append(1.0)
                best_similarity = max([best_similarity, *(1.0 - d for _, d in dense)])
            if use_lexical:
                lexical = self._lexical.search(text, active=active, k=candidates)
                rankings.append([c for c, _ in lexical])
                weights.append(LEXICAL_WEIGHT if use_dense else 1.0)
        kept = [(r, w) for r, w in zip(rankings, weights, strict=True) if r]
        scored = rrf([r for r, _ in kept], [w for _, w in kept])
        rerank_score = (
            None if self._reranker is None else self._rerank(self._reranker, scored, query, translated)
        )
        hits = by_page(scored, k=k, max_per_page=self._max_per_page)
        return Retrieved(
            tuple(hits),
            best_similarity,
            dense_used=use_dense,
            rerank_score=rerank_score,
            translated=translated,
            unseen_names=unseen_names(query, [hit.chunk for hit in hits[:NAMES_CHECKED_IN]]),
        )

    def _vocabulary(self, active: ActiveIndex) -> KnownTerms:
        """Which terms the wiki uses, asked of the lexical index at most once a term for this search."""
        asked: dict[str, bool] = {}

        def known(terms: Iterable[str]) -> frozenset[str]:
            new = [t for t in terms if t not in asked]
            if new:
                found = self._lexical.document_frequencies(new, active=active)
                asked.update((t, t in found) for t in new)
            return frozenset(t for t in terms if asked.get(t))

        return known

    def _rerank(
        self, reranker: Reranker, scored: dict[str, tuple[Chunk, float]], query: str, translated: str
    ) -> float | None:
        """Adds the cross-encoder's ranking of the best candidates to their fused scores, in place.

        Its ranking is fused like the others rather than replacing them: alone it ranks worse than
        together with dense and lexical (MRR@10 0.668 alone, 0.745 fused, on bench/quality_set). A
        translated question is read in each passage's language: the English rendering against English
        passages, the question as asked against passages in its own language (a wiki may hold both).
        """
        best = sorted(scored, key=lambda c: (-scored[c][1], c))[: self._rerank_candidates]
        if not best:
            return None
        texts = [scored[c][0].text for c in best]
        if not translated:
            logits = reranker.score(query, texts)
        else:
            source = self._translator.source_language if self._translator is not None else ""
            own = [self._passage_language(text) == source for text in texts]
            as_asked = iter(reranker.score(query, [t for t, o in zip(texts, own, strict=True) if o]))
            english = iter(reranker.score(translated, [t for t, o in zip(texts, own, strict=True) if not o]))
            logits = [next(as_asked) if o else next(english) for o in own]
        for rank, (chunk_id, _) in enumerate(sorted(zip(best, logits, strict=True), key=lambda cl: -cl[1])):
            chunk, score = scored[chunk_id]
            scored[chunk_id] = (chunk, score + 1.0 / (RRF_K + rank + 1))
        return max(logits)

    def _same_model(self, built_with: str) -> bool:
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
