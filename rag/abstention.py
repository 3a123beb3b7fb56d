"""When the wiki does not hold the answer: extractive mode must say so rather than show unrelated passages.

Calibrated on bench/quality_set (29 questions the corpus cannot answer, 237 it can), from the per-question
signals `bench/quality.py --dump` writes. A cosine similarity alone cannot tell them apart (at 0.3, 10 of
29 refused). The cross-encoder's best score can, mostly; three rules together refuse what it leaves:

1. Nothing is about the question: the best score is under -7 (RETRIEVAL_MIN_RERANK_SCORE).
2. Little is, and nothing comes close in meaning either: under -5 with a cosine under 0.45
   (RETRIEVAL_WEAK_RERANK_SCORE, RETRIEVAL_WEAK_SIMILARITY): "How do I request a firewall opening?"
3. The question names something (a product, a place: "Which JVM flags …", "… our Splunk index") that
   none of the passages shown mentions, and either the cross-encoder is not convinced (under -2,
   RETRIEVAL_UNSEEN_NAME_RERANK_SCORE) or nothing comes close in meaning (the same 0.45). A named thing
   the wiki does not know is the commonest sign of a question about another system.

Measured on the set: 27 of 29 refused (93 %), 2 of 237 answerable refused (0.8 %). On the same
retrieval, the single threshold at -6 this replaces refused 20 of 29 and 3 of 237; rule 1 alone 19 and 1;
rules 1 and 2, 22 and 1; with rule 3's rerank half, 26 and 2. The cross-encoder reads English: a French
question is judged on its English rendering (rag/crosslingual.py); a question it could not read is judged
by the cosine (RETRIEVAL_MIN_SIMILARITY), as every question is when the reranker is off.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.retrieval import Retrieved

# The language the cross-encoder was trained on (MS MARCO).
RERANKER_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class AbstentionPolicy:
    min_similarity: float = 0.30
    min_rerank_score: float = -7.0
    weak_rerank_score: float = -5.0
    weak_similarity: float = 0.45
    unseen_name_rerank_score: float = -2.0

    def abstains(self, retrieved: Retrieved, language: str) -> bool:
        if not retrieved.dense_used:
            # Lexical only (a rebuild is pending): no calibrated signal, so show the passages.
            return False
        score = retrieved.rerank_score
        if score is None or not (language == RERANKER_LANGUAGE or retrieved.translated):
            return retrieved.best_similarity < self.min_similarity
        if score < self.min_rerank_score:
            return True
        if score < self.weak_rerank_score and retrieved.best_similarity < self.weak_similarity:
            return True
        if retrieved.unseen_names:
            return score < self.unseen_name_rerank_score or retrieved.best_similarity < self.weak_similarity
        return False
