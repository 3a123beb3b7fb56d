"""A deterministic, fast embedder for tests: hashed bag of words, so shared words mean nearby vectors."""

from __future__ import annotations

import hashlib
import math
import re
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


# A stand-in for WordPiece: a CJK character, a punctuation mark or three letters or digits make a token.
_PIECE = re.compile(
    r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]|[^\W_]{1,3}|[^\w\s]|_"
)


class WindowedEmbedder(HashingEmbedder):
    """A HashingEmbedder that reads a window of tokens, as a real model does: sync then measures chunks
    in tokens (rag.embedding_runtime.token_scaled_length), and a text over the window counts as truncated."""

    def __init__(self, *, window: int = 256, dims: int = 256) -> None:
        super().__init__(dims=dims)
        self.max_seq_length = window
        self.truncated = 0

    def count_tokens(self, text: str) -> int:
        return len(_PIECE.findall(text)) + 2  # with [CLS] and [SEP]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        window = self.max_seq_length or 0
        self.truncated += sum(self.count_tokens(t) > window for t in texts)
        return super().embed_documents(texts)
