"""An in-memory vector store: the index ports' second implementation, for tests of what sits above them.

It passes the same contract suite as Chroma (tests/test_index_contract.py) and, like a remote store, can
fail: `fail_drops(n)` makes the next n drops raise VectorStoreError, as a Chroma server that is down would.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from rag.ports import MissingCollection, VectorStoreError
from rag.types import Chunk


def _cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - dot / norms if norms else 1.0


class MemoryIndex:
    """Implements rag.ports.VectorIndex."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[Chunk, tuple[float, ...]]] = {}
        # As a Chroma server's collection handle: once dropped (by anyone), it says so.
        self.dropped = False

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk")
        with self._lock:
            for chunk, vector in zip(chunks, embeddings, strict=True):
                self._rows[chunk.chunk_id] = (chunk, tuple(vector))

    def delete(self, chunk_ids: Sequence[str]) -> None:
        with self._lock:
            for chunk_id in chunk_ids:
                self._rows.pop(chunk_id, None)

    def query(self, embedding: Sequence[float], *, k: int) -> list[tuple[Chunk, float]]:
        with self._lock:
            rows = list(self._rows.values())
        scored = sorted(
            ((c, _cosine_distance(embedding, v)) for c, v in rows), key=lambda cd: (cd[1], cd[0].chunk_id)
        )
        return scored[: max(k, 0)]

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        with self._lock:
            return [self._rows[i][0] for i in dict.fromkeys(chunk_ids) if i in self._rows]

    def all_chunks(self) -> list[Chunk]:
        with self._lock:
            return [c for c, _ in self._rows.values()]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._rows)

    def count(self) -> int:
        with self._lock:
            if self.dropped:
                raise MissingCollection("collection is no longer in the vector store")
            return len(self._rows)


class MemoryStore:
    """Implements rag.ports.VectorStore."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._collections: dict[str, MemoryIndex] = {}
        self._failing_drops = 0

    def fail_drops(self, times: int) -> None:
        """The next `times` drops fail as an unreachable server's would."""
        with self._lock:
            self._failing_drops = times

    def open(self, name: str) -> MemoryIndex:
        with self._lock:
            return self._collections.setdefault(name, MemoryIndex())

    def existing(self, name: str) -> MemoryIndex:
        with self._lock:
            index = self._collections.get(name)
        if index is None:
            raise MissingCollection(f"collection {name} is not in the vector store")
        return index

    def drop(self, name: str) -> None:
        with self._lock:
            if self._failing_drops > 0:
                self._failing_drops -= 1
                raise VectorStoreError(f"cannot drop collection {name}: connection refused")
            gone = self._collections.pop(name, None)
        if gone is not None:
            gone.dropped = True

    def names(self) -> list[str]:
        with self._lock:
            return list(self._collections)
