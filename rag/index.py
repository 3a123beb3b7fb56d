"""The Chroma vector store: embedded PersistentClient by default, a Chroma server when configured."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chromadb
import httpx
import numpy as np
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError, NotFoundError

from rag.ports import MissingCollection, VectorStoreError
from rag.types import Chunk

log = logging.getLogger(__name__)

# Chroma caps one write; large batches are still far cheaper than one call per chunk.
_WRITE_BATCH = 2000
# Ids named in one read: a server's request stays small, and few round trips fetch a catch-up's chunks.
_READ_BATCH = 1000
# How many graph candidates a dense search explores (bench/hnsw.py, the share of the exact 20 nearest
# chunks found): Chroma's default, 100, found 97.6 % on 20k real chunks and 94.5 % at 100k; 800 finds
# 99.96 % and 99.5 %, for 1-2 ms more a query (p95 under 6 ms at both sizes).
DEFAULT_EF_SEARCH = 800


def open_chroma(*, path: Path, host: str = "", port: int = 8000, ssl: bool = False) -> ClientAPI:
    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if host:
        return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _chunk(chunk_id: str, document: str | None, meta: dict[str, Any] | None) -> Chunk:
    meta = meta or {}
    return Chunk(
        chunk_id=chunk_id,
        page_id=str(meta.get("page_id", "")),
        space=str(meta.get("space", "")),
        title=str(meta.get("title", "")),
        url=str(meta.get("url", "")),
        version=int(meta.get("version", 0) or 0),
        last_modified=str(meta.get("last_modified", "")),
        section=str(meta.get("section", "")),
        text=document or "",
    )


class ChromaStore:
    """Implements rag.ports.VectorStore over one Chroma client."""

    def __init__(self, client: ClientAPI, *, ef_search: int = DEFAULT_EF_SEARCH) -> None:
        self._client = client
        self._ef_search = ef_search

    def open(self, name: str) -> ChromaIndex:
        return ChromaIndex(self._client, name, create=True, ef_search=self._ef_search)

    def existing(self, name: str) -> ChromaIndex:
        return ChromaIndex(self._client, name, create=False, ef_search=self._ef_search)

    def drop(self, name: str) -> None:
        try:
            self._client.delete_collection(name)
        except NotFoundError:
            return
        except (ChromaError, httpx.TransportError) as exc:
            raise VectorStoreError(f"cannot drop collection {name}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            # The HTTP client raises a bare Exception for an error response it cannot map (a proxy's 502,
            # a server's HTML page): that one is the store failing. Any subclass is a bug and stays one.
            if type(exc) is not Exception:
                raise
            raise VectorStoreError(f"cannot drop collection {name}: {str(exc)[:300]}") from exc

    def names(self) -> list[str]:
        return [c.name for c in self._client.list_collections()]


class ChromaIndex:
    """Implements rag.ports.VectorIndex over one Chroma collection (cosine space)."""

    def __init__(
        self, client: ClientAPI, name: str, *, create: bool, ef_search: int = DEFAULT_EF_SEARCH
    ) -> None:
        self.name = name
        # embedding_function=None: we always pass vectors, and Chroma's default would download a model.
        try:
            if create:
                self._collection = client.get_or_create_collection(
                    name=name,
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine", "ef_search": ef_search}},
                )
            else:
                self._collection = client.get_collection(name=name, embedding_function=None)
            self._align_ef_search(ef_search)
        except NotFoundError:
            raise MissingCollection(f"collection {name} is not in the vector store") from None
        except (ChromaError, httpx.TransportError) as exc:
            raise VectorStoreError(f"cannot open collection {name}: {type(exc).__name__}: {exc}") from exc

    def _align_ef_search(self, ef_search: int) -> None:
        """A collection made before (or with another CHROMA_HNSW_EF_SEARCH) is changed to this one.

        Chroma keeps the value in the collection: a process that already loaded its graph keeps searching
        with the old one (chromadb 1.5.9), the next process to open it uses the new one.
        """
        hnsw = (self._collection.configuration or {}).get("hnsw") or {}
        if hnsw.get("ef_search") == ef_search:
            return
        try:
            self._collection.modify(configuration={"hnsw": {"ef_search": ef_search}})
        except (ChromaError, httpx.TransportError) as exc:
            # Searching with the collection's own value beats not searching: a reader must still open it.
            log.warning("collection %s keeps ef_search %s: %s", self.name, hnsw.get("ef_search"), exc)

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk")
        for start in range(0, len(chunks), _WRITE_BATCH):
            part = chunks[start : start + _WRITE_BATCH]
            self._collection.upsert(
                ids=[c.chunk_id for c in part],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],
                embeddings=np.asarray(embeddings[start : start + _WRITE_BATCH], dtype=np.float32),
            )

    def delete(self, chunk_ids: Sequence[str]) -> None:
        for start in range(0, len(chunk_ids), _WRITE_BATCH):
            part = list(chunk_ids[start : start + _WRITE_BATCH])
            if part:
                self._collection.delete(ids=part)

    def query(self, embedding: Sequence[float], *, k: int) -> list[tuple[Chunk, float]]:
        if k <= 0 or self.count() == 0:
            return []
        result = self._collection.query(
            query_embeddings=np.asarray([embedding], dtype=np.float32),
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        docs = (result.get("documents") or [[]])[0]
        metas = (result.get("metadatas") or [[]])[0]
        dists = (result.get("distances") or [[]])[0]
        return [
            (_chunk(i, d, dict(m) if m else None), float(dist))
            for i, d, m, dist in zip(ids, docs, metas, dists, strict=False)
        ]

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        chunks: list[Chunk] = []
        # Chroma refuses a request naming one id twice.
        unique = list(dict.fromkeys(chunk_ids))
        for start in range(0, len(unique), _READ_BATCH):
            part = unique[start : start + _READ_BATCH]
            if not part:
                continue
            try:
                got = self._collection.get(ids=part, include=["documents", "metadatas"])
            except (ChromaError, httpx.TransportError) as exc:
                raise VectorStoreError(
                    f"cannot read chunks of {self.name}: {type(exc).__name__}: {exc}"
                ) from exc
            ids = got["ids"]
            docs: list[str] = list(got.get("documents") or [""] * len(ids))
            metas = list(got.get("metadatas") or [{}] * len(ids))
            chunks.extend(
                _chunk(i, d, dict(m) if m else None) for i, d, m in zip(ids, docs, metas, strict=False)
            )
        return chunks

    def all_chunks(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        offset = 0
        while True:
            got = self._collection.get(include=["documents", "metadatas"], limit=5000, offset=offset)
            ids = got["ids"]
            docs: list[str] = list(got.get("documents") or [""] * len(ids))
            metas = list(got.get("metadatas") or [{}] * len(ids))
            chunks.extend(
                _chunk(i, d, dict(m) if m else None) for i, d, m in zip(ids, docs, metas, strict=False)
            )
            if len(ids) < 5000:
                return chunks
            offset += len(ids)

    def ids(self) -> list[str]:
        out: list[str] = []
        offset = 0
        while True:
            got = self._collection.get(include=[], limit=10000, offset=offset)
            out.extend(got["ids"])
            if len(got["ids"]) < 10000:
                return out
            offset += len(got["ids"])

    def count(self) -> int:
        try:
            return int(self._collection.count())
        except NotFoundError:
            raise MissingCollection(f"collection {self.name} is no longer in the vector store") from None
