"""What the core needs around an embedder, without importing a model runtime: loading on first use, and a
chunk length that keeps every chunk inside the model's token window."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache

from rag.ports import Embedder


class LazyEmbedder:
    """Implements rag.ports.Embedder by loading the model on first use: status, search of an empty index
    and start-up stay fast."""

    def __init__(self, factory: Callable[[], Embedder]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None

    @property
    def loaded(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._factory()
            return self._embedder

    @property
    def fingerprint(self) -> str:
        return self.loaded.fingerprint

    @property
    def max_seq_length(self) -> int | None:
        return self.loaded.max_seq_length

    @property
    def truncated(self) -> int:
        # Counting must not load a model nothing has used yet: then nothing was truncated either.
        with self._lock:
            embedder = self._embedder
        return 0 if embedder is None else embedder.truncated

    def count_tokens(self, text: str) -> int:
        return self.loaded.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.loaded.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.loaded.embed_query(text)

    def close(self) -> None:
        with self._lock:
            embedder = self._embedder
        if embedder is not None:
            embedder.close()


def token_scaled_length(embedder: Embedder, *, chunk_size: int) -> Callable[[str], int]:
    """A length in characters that also keeps every chunk of chunk_size inside the model's token window.

    CHUNK_SIZE stays in characters (what deployments configure); a chunk must also fit the model's
    max_seq_length in tokens, or its tail would be silently truncated at embedding time. Scaling the
    token count onto the character budget expresses both limits as one length function.
    """
    window = embedder.max_seq_length
    if window is None or window <= 0:
        return len
    scale = chunk_size / window

    @lru_cache(maxsize=8192)
    def length(text: str) -> int:
        # A WordPiece token covers at least one character: a text this short cannot overflow the
        # window, and the splitter measures many such pieces, so skip the tokenizer for them.
        if len(text) + 2 <= window:
            return len(text)
        return max(len(text), math.ceil(embedder.count_tokens(text) * scale))

    return length
