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


class Answerer(Protocol):
    """Answers one question from the wiki, given the session's history. Implemented by rag.service."""

    async def answer(self, question: str, history: Sequence[Turn]) -> Reply: ...


class Progress(Protocol):
    """How a channel shows that an answer is on its way (a placeholder message, a typing indicator)."""

    async def working(self) -> None:
        """Called once, before the question waits for its turn: must not raise."""
        ...


class Assistant(Protocol):
    """What every channel adapter talks to. Implemented by rag.conversation.Conversation."""

    async def ask(self, message: IncomingMessage, *, progress: Progress | None = None) -> Reply:
        """Handles one message (a question or a command) in its session or place.

        Never raises for bad input or a failure on our side: returns a Reply saying why, within the
        configured timeouts.
        """
        ...

    def follows(self, session_key: str) -> bool:
        """The bot takes part in this session: a reply in its thread needs no new mention."""
        ...
