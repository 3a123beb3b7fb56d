"""When the wiki does not hold the answer: extractive mode must say so rather than show unrelated passages."""

from __future__ import annotations

from dataclasses import dataclass

from rag.retrieval import Retrieved


@dataclass(frozen=True, slots=True)
class AbstentionPolicy:
    min_similarity: float = 0.3

    def abstains(self, retrieved: Retrieved) -> bool:
        if not retrieved.dense_used:
            return False
        return retrieved.best_similarity < self.min_similarity
