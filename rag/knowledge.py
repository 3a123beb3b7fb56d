"""Which Chroma collection readers use, and the blue/green swap that keeps it whole.

A full rebuild (first ingest, `ingest --full`, a new embedding model or backend) writes a fresh collection
and only then points readers at it, so nobody ever queries a half-built or mixed-model index.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from chromadb.api import ClientAPI

from rag.index import ChromaIndex
from rag.state import StateStore

log = logging.getLogger(__name__)


class KnowledgeBase:
    def __init__(
        self,
        client: ClientAPI,
        state: StateStore,
        *,
        prefix: str,
        fingerprint: Callable[[], str],
        layout: str = "",
    ) -> None:
        self.state = state
        # How pages are cut into chunks (format version, sizes): chunks of two layouts must not mix
        # either, or a changed CHUNK_SIZE would only reach the pages edited since.
        self.layout = layout
        # A callable: knowing the embedder's fingerprint may mean loading the model, which status,
        # search and chat on an up-to-date index never need to wait for.
        self._fingerprint = fingerprint
        self._client = client
        self._prefix = prefix
        self._lock = threading.Lock()
        self._open: dict[str, ChromaIndex] = {}

    def _index(self, name: str) -> ChromaIndex:
        with self._lock:
            index = self._open.get(name)
            if index is None:
                index = ChromaIndex(self._client, name)
                self._open[name] = index
            return index

    def active_name(self) -> str | None:
        return self.state.get("active_collection")

    def active(self) -> ChromaIndex | None:
        """The collection readers use; re-read each time so another process's swap is seen."""
        name = self.active_name()
        return self._index(name) if name else None

    @property
    def fingerprint(self) -> str:
        return self._fingerprint()

    def needs_rebuild(self) -> bool:
        return (
            self.active_name() is None
            or self.state.get("active_fingerprint") != self.fingerprint
            or (self.state.get("active_layout") or "") != self.layout
        )

    def new_collection(self) -> ChromaIndex:
        digest = hashlib.sha256(self.fingerprint.encode()).hexdigest()[:8]
        stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S%f")
        return self._index(f"{self._prefix}-{digest}-{stamp}")

    def activate(self, index: ChromaIndex) -> None:
        previous = self.active_name()
        self.state.set("active_fingerprint", self.fingerprint)
        self.state.set("active_layout", self.layout)
        self.state.set("active_collection", index.name)
        self.state.bump_revision()
        if previous and previous != index.name:
            self.discard(previous)
        log.info("index %s is now active", index.name)

    def discard(self, name: str) -> None:
        with self._lock:
            self._open.pop(name, None)
        try:
            self._client.delete_collection(name)
        except Exception as exc:  # a missing collection is already gone: nothing to undo
            log.warning("could not delete collection %s: %s", name, exc)
        self.state.drop_collection(name)
