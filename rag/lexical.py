"""BM25 over the active collection's chunks, rebuilt only when the index revision moves."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from rag.types import Chunk

_TOKEN = re.compile(r"[a-z0-9_]+(?:[.\-][a-z0-9_]+)*")
# Words too common to carry meaning in either of our users' languages.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "my",
        "our",
        "can",
        "de",
        "des",
        "du",
        "la",
        "le",
        "les",
        "un",
        "une",
        "et",
        "est",
        "en",
        "que",
        "qui",
        "quoi",
        "pour",
        "par",
        "sur",
        "dans",
        "au",
        "aux",
        "ce",
        "cette",
        "il",
        "elle",
        "je",
        "nous",
        "vous",
        "on",
        "comment",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "ou",
        "se",
        "sa",
        "son",
        "ses",
        "pas",
        "ne",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-folded terms: "Procédure" and "procedure" match; `kubectl` and ports survive."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return [t for t in _TOKEN.findall(folded) if t not in _STOP]


class LexicalIndex:
    """Thread-safe cache of one BM25 model, keyed by (collection, revision)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int] | None = None
        self._chunks: list[Chunk] = []
        self._bm25: BM25Okapi | None = None

    def search(
        self, query: str, *, key: tuple[str, int], load: Callable[[], Sequence[Chunk]], k: int
    ) -> list[tuple[Chunk, float]]:
        with self._lock:
            if key != self._key:
                self._chunks = list(load())
                corpus = [tokenize(c.text) for c in self._chunks]
                self._bm25 = BM25Okapi(corpus) if any(corpus) else None
                self._key = key
            bm25, chunks = self._bm25, self._chunks
        terms = tokenize(query)
        if bm25 is None or not terms:
            return []
        scores = bm25.get_scores(terms)
        top = np.argsort(scores)[::-1][:k]
        return [(chunks[i], float(scores[i])) for i in top if scores[i] > 0]
