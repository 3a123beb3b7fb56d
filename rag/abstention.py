"""When the wiki does not hold the answer: extractive mode must say so rather than show unrelated passages.

Calibrated on bench/quality_set (29 questions the corpus cannot answer, 237 it can). A cosine similarity
alone cannot tell them apart: at the old 0.3 threshold only 10 of 29 unanswerable questions were refused,
and no threshold refuses more without refusing answerable ones. The cross-encoder's score can, for English
questions: below -6 (RETRIEVAL_MIN_RERANK_SCORE) no candidate is about the question. It reads English only,
so a question in another language is judged by the dense similarity (RETRIEVAL_MIN_SIMILARITY, 0.3).
The operating point, from the curve in bench/quality.py's dump: 72 % of unanswerable questions refused,
3.4 % of answerable ones (half of which retrieval had not found anyway); -5 refuses 79 % and 4.2 %.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.retrieval import Retrieved

# The language the cross-encoder was trained on (MS MARCO).
RERANKER_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class AbstentionPolicy:
    min_similarity: float = 0.30
    min_rerank_score: float = -6.0

    def abstains(self, retrieved: Retrieved, language: str) -> bool:
        if not retrieved.dense_used:
            # Lexical only (a rebuild is pending): no calibrated signal, so show the passages.
            return False
        if retrieved.rerank_score is not None and language == RERANKER_LANGUAGE:
            return retrieved.rerank_score < self.min_rerank_score
        return retrieved.best_similarity < self.min_similarity
