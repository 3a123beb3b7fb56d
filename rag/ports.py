"""One Protocol per port. Concrete classes live beside their subject; tests bring fakes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from rag.types import Chunk, IncomingMessage, Page, PageRef, Reply, Turn


class PageSource(Protocol):
    """Confluence, split by capability: a cheap listing, a changed-since poll, fetch by id."""

    def list_pages(self) -> list[PageRef]:
        """Every readable current page of the configured spaces, without bodies."""
        ...

    def pages_modified_since(self, since: datetime | None) -> Iterator[Page]:
        """Pages with bodies, modified at or after `since` (all pages when None)."""
        ...

    def get_page(self, page_id: str) -> Page | None:
        """One page with its body, or None when it is gone."""
        ...


class Embedder(Protocol):
    @property
    def fingerprint(self) -> str:
        """Identifies model and backend: vectors of two fingerprints never share a collection."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class Reranker(Protocol):
    """Scores (question, passage) pairs together: higher is a better answer."""

    def warm(self) -> None: ...

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


class VectorIndex(Protocol):
    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None: ...

    def delete(self, chunk_ids: Sequence[str]) -> None: ...

    def query(self, embedding: Sequence[float], *, k: int) -> list[tuple[Chunk, float]]:
        """Nearest chunks with their cosine distance (lower is closer)."""
        ...

    def all_chunks(self) -> list[Chunk]: ...

    def count(self) -> int: ...


class ChatModel(Protocol):
    async def complete(self, *, messages: Sequence[dict[str, str]]) -> str: ...


class SessionStore(Protocol):
    def history(self, session_id: str) -> list[Turn]: ...

    def append(self, session_id: str, turns: Sequence[Turn]) -> None: ...

    def reset(self, session_id: str) -> None: ...

    def reset_prefix(self, prefix: str) -> int:
        """Forgets every session whose id starts with prefix; returns how many."""
        ...

    def purge_expired(self) -> int:
        """Deletes idle sessions nobody will read again; returns how many."""
        ...

    def close(self) -> None: ...


class Assistant(Protocol):
    """What every channel adapter talks to. Implemented by rag.service.WikiAssistant."""

    async def ask(self, message: IncomingMessage) -> Reply:
        """Answers one message in its session. Never raises for bad input: returns a Reply saying why."""
        ...

    async def reset(self, session_key: str) -> None: ...
