"""A deterministic, fast embedder for tests: hashed bag of words, so shared words mean nearby vectors."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from rag.lexical import tokenize


class HashingEmbedder:
    """Implements rag.ports.Embedder: reads texts of any length, so nothing is ever truncated."""

    max_seq_length: int | None = None
    truncated = 0

    def __init__(self, *, dims: int = 256, name: str = "hashing-test") -> None:
        self.dims = dims
        self.name = name
        self.documents_embedded = 0
        self.calls = 0
        self.closed = False

    @property
    def fingerprint(self) -> str:
        return f"{self.name}/{self.dims}"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dims
        for token in tokenize(text):
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "big")
            vec[h % self.dims] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        self.documents_embedded += len(texts)
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(tokenize(text))

    def close(self) -> None:
        self.closed = True
