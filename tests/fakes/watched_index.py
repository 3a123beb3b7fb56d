"""A vector index seen through a window: what a lexical catch-up reads, and a way to hold it mid-way."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from rag.ports import ActiveIndex, VectorIndex, VectorStoreError
from rag.types import Chunk


class WatchedIndex:
    """Implements rag.ports.VectorIndex over another one, recording reads. `hold()` stops every `get` until
    `release()` (`entered` is set once one waits), as a slow store would; `fail(n)` makes the next n `get`s
    raise VectorStoreError, as a store going down would."""

    def __init__(self, inner: VectorIndex) -> None:
        self._inner = inner
        self.fetched: list[str] = []
        self.full_reads = 0
        self.entered = threading.Event()
        self._release = threading.Event()
        self._release.set()
        self._failures = 0

    def fail(self, times: int = 1) -> None:
        self._failures = times

    def hold(self) -> None:
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        self._inner.upsert(chunks, embeddings)

    def delete(self, chunk_ids: Sequence[str]) -> None:
        self._inner.delete(chunk_ids)

    def query(self, embedding: Sequence[float], *, k: int) -> list[tuple[Chunk, float]]:
        return self._inner.query(embedding, k=k)

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        if self._failures > 0:
            self._failures -= 1
            raise VectorStoreError("cannot read chunks: connection refused")
        self.entered.set()
        if not self._release.wait(timeout=30):
            raise TimeoutError("the test never released the held read")
        got = self._inner.get(chunk_ids)
        self.fetched.extend(c.chunk_id for c in got)
        return got

    def all_chunks(self) -> list[Chunk]:
        self.full_reads += 1
        return self._inner.all_chunks()

    def ids(self) -> list[str]:
        return self._inner.ids()

    def count(self) -> int:
        return self._inner.count()


def watched(active: ActiveIndex | None) -> tuple[ActiveIndex, WatchedIndex]:
    """The active index with its vectors behind a WatchedIndex."""
    assert active is not None
    window = WatchedIndex(active.vectors)
    return replace(active, vectors=window), window
