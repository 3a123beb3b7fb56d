"""One Protocol per port. Concrete classes live beside their subject; tests bring fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rag.types import (
    ActiveCollection,
    Chunk,
    Feedback,
    IncomingMessage,
    IndexedPage,
    IndexSummary,
    LoggedQuestion,
    Page,
    PageRef,
    Readiness,
    Reply,
    Suggestion,
    SyncReport,
    Turn,
)


class PageSourceError(Exception):
    """The page source cannot be read (auth, network, server): the run stops. The message is safe to log."""


class PageSource(Protocol):
    """Confluence, split by capability: a cheap listing, a changed-since poll, fetch by id.

    Every method raises PageSourceError when the source cannot be read; anything else is a bug.
    """

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

    @property
    def max_seq_length(self) -> int | None:
        """Tokens of one text the model reads (the rest is cut off); None when it reads any length."""
        ...

    @property
    def truncated(self) -> int:
        """How many texts so far were longer than max_seq_length: only their start was embedded."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for text, special tokens included: compare with max_seq_length."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def close(self) -> None:
        """Releases worker threads; embedding may still work afterwards, only slower."""
        ...


class Reranker(Protocol):
    """Scores (question, passage) pairs together: higher is a better answer."""

    def warm(self) -> None: ...

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


class VectorStoreError(Exception):
    """The vector store cannot be reached or refused a request (network, server): the message is for logs."""


class LeaseLost(VectorStoreError):
    """This process does not (or no longer) hold the sync lease: another replica is the index's writer."""


class MissingCollection(VectorStoreError):
    """The collection is not in the store: another process dropped it, or the store was wiped or replaced."""


class VectorIndex(Protocol):
    """One collection of chunks and their vectors (cosine space)."""

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        """Adds or replaces chunks by id: writing the same chunks twice leaves one copy."""
        ...

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Removes the named chunks; ids that are not there are ignored."""
        ...

    def query(self, embedding: Sequence[float], *, k: int) -> list[tuple[Chunk, float]]:
        """Nearest chunks with their cosine distance (lower is closer)."""
        ...

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The named chunks that are there, in no particular order; ids that are not there are ignored."""
        ...

    def all_chunks(self) -> list[Chunk]: ...

    def ids(self) -> list[str]: ...

    def count(self) -> int:
        """How many chunks it holds; MissingCollection when the collection was dropped meanwhile."""
        ...


class VectorStore(Protocol):
    """Named collections: where the blue/green switch creates and drops its indexes."""

    def open(self, name: str) -> VectorIndex:
        """The collection called name, created empty when it does not exist."""
        ...

    def existing(self, name: str) -> VectorIndex:
        """The collection called name; MissingCollection when it is not there (never created behind the
        caller's back: an empty index where a full one is expected would answer "nothing found")."""
        ...

    def drop(self, name: str) -> None:
        """Deletes the collection; a missing one is already gone. Raises VectorStoreError when the
        store cannot be reached or refuses."""
        ...

    def names(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class ActiveIndex:
    """The collection readers use, read in one go with what built it."""

    name: str
    # The embedder's fingerprint when it was built: query vectors of another model are meaningless.
    fingerprint: str
    # Bumped on every write readers should see: caches over the chunks are keyed on (name, revision).
    revision: int
    vectors: VectorIndex


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """Where one sync writes: the active collection, or a fresh one that a complete run activates."""

    name: str
    rebuild: bool
    # The embedder this run writes with: recorded with the collection when a rebuild is activated.
    fingerprint: str
    vectors: VectorIndex


class LedgerReader(Protocol):
    """What the index holds and how syncs went, without touching a vector: status and health read this."""

    def summary(self) -> IndexSummary:
        """The active collection's name, model, pages, chunks and spaces."""
        ...

    def pages(self, collection: str) -> dict[str, IndexedPage]:
        """The pages a collection holds by id, with their versions and chunk ids (empty when unknown)."""
        ...

    def recent_syncs(self, n: int) -> list[dict[str, object]]:
        """The last n sync reports (SyncReport.as_dict()), newest first."""
        ...

    def last_good_sync(self) -> dict[str, object] | None:
        """The newest report of a run that succeeded."""
        ...

    def last_success(self) -> datetime | None:
        """When the last good sync started: the next incremental poll reaches back from there."""
        ...


class LedgerStore(LedgerReader, Protocol):
    """The ledger behind the index: SQLite in the data folder (`rag.knowledge.Ledger`), or Redis when several
    replicas share one index (`rag.ledger_redis.RedisLedger`). Written only by KnowledgeBase."""

    def active_collection(self) -> ActiveCollection | None: ...

    def set_active(self, name: str, *, fingerprint: str, layout: str) -> None:
        """Points readers at name, atomically with what built it and a new revision."""
        ...

    def bump_revision(self) -> None: ...

    def pages(self, collection: str) -> dict[str, IndexedPage]: ...

    def put_page(self, collection: str, page: IndexedPage) -> None: ...

    def remove_pages(self, collection: str, page_ids: Iterable[str]) -> None: ...

    def doom(self, collection: str, reason: str) -> None:
        """Lists a collection for dropping and forgets its pages."""
        ...

    def doomed(self) -> list[str]: ...

    def dropped(self, collection: str) -> None: ...

    def record_sync(self, report: SyncReport) -> None: ...

    def close(self) -> None: ...


class SyncLease(Protocol):
    """Which replica is the index's one writer (`rag.lease.RedisLease`)."""

    owner: str

    @property
    def renew_every_s(self) -> float:
        """How often the holder renews: well within the lease's expiry."""
        ...

    def acquire(self) -> bool:
        """Takes the lease, or keeps it; False while another replica holds it."""
        ...

    def renew(self) -> bool:
        """False once the lease expired or changed hands."""
        ...

    def release(self) -> None: ...

    def token(self) -> str | None:
        """The fencing token the ledger's writes carry; None when not held."""
        ...

    def holder(self) -> str | None: ...

    def request_sync(self, *, full: bool) -> None:
        """Asks the writer, wherever it runs, for a sync."""
        ...

    def take_request(self) -> bool | None:
        """For the writer: the sync asked of it (True: full), once; None when none is pending."""
        ...


class IndexReader(LedgerReader, Protocol):
    """The ledger and the active collection's vectors: what retrieval and the scheduler read."""

    def active(self) -> ActiveIndex | None:
        """Read afresh on every call, so another process's switch is seen."""
        ...

    def needs_rebuild(self, *, fingerprint: str) -> bool:
        """True without an index, or when it was built by another embedder or chunk layout."""
        ...

    def readiness(self, *, summary: IndexSummary | None = None) -> Readiness:
        """Asks the store, not only the ledger: is the active collection there, and does it hold chunks?
        `summary`, when the caller has just read it, saves reading the ledger again."""
        ...


class LexicalIndex(Protocol):
    """Keyword (BM25) search over the active collection's chunks, kept beside the vectors and brought up to
    date from the ledger's page records: each process or replica catches up on its own, page by page."""

    def search(self, query: str, *, active: ActiveIndex, k: int) -> list[tuple[Chunk, float]]:
        """The k best chunks for query, best first (higher score is better). Catches up first when active
        moved, unless another thread is catching up: then answers from the last complete state at once."""
        ...

    def document_frequencies(self, terms: Iterable[str], *, active: ActiveIndex) -> dict[str, int]:
        """How many chunks of the wiki hold each term (rag.lexical terms); terms it never uses are left out."""
        ...

    def catch_up(self, active: ActiveIndex) -> None:
        """Brings the index to active's revision now, waiting for a catch-up under way (the sync calls it)."""
        ...

    def close(self) -> None: ...


class IndexWriter(IndexReader, Protocol):
    """What a sync changes: a collection's pages, the blue/green switch and the sync history."""

    def begin(self, *, fingerprint: str, full: bool) -> SyncTarget:
        """The collection this run writes: a fresh one when full or a rebuild is needed, else the active
        one. First retries dropping collections an earlier run could not drop."""
        ...

    def indexed_pages(self, target: SyncTarget) -> dict[str, IndexedPage]: ...

    def put_page(self, target: SyncTarget, page: IndexedPage) -> None: ...

    def remove_pages(self, target: SyncTarget, page_ids: Iterable[str]) -> None: ...

    def finish(self, target: SyncTarget, *, ok: bool, changed: bool) -> None:
        """Ends the run: a complete rebuild becomes active (the old collection is dropped), a failed
        one is dropped; readers are told when what they read changed."""
        ...

    def record_sync(self, report: SyncReport) -> None:
        """Keeps the report for status and health; a good run also moves last_success."""
        ...


class ChatModel(Protocol):
    def warm(self) -> None:
        """Loads what the first answer would otherwise load on the event loop. Blocking: call it in a thread."""
        ...

    async def complete(self, *, messages: Sequence[dict[str, str]]) -> str: ...

    def stream(self, *, messages: Sequence[dict[str, str]]) -> AsyncIterator[str]:
        """The answer in pieces as the model writes it (each a delta, not the text so far). Raises
        ChatModelError (rag.llm) before the first piece or between two, like complete()."""
        ...


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

    async def answer(
        self, question: str, history: Sequence[Turn], *, progress: Progress | None = None
    ) -> Reply:
        """With progress, a model's answer is streamed into progress.draft() as it is written."""
        ...


class Progress(Protocol):
    """How a channel shows that an answer is on its way (a status, a placeholder, a typing indicator), and
    the answer itself while the model writes it."""

    async def working(self) -> None:
        """Called once, before the question waits for its turn: must not raise."""
        ...

    async def draft(self, text: str) -> None:
        """The answer so far, in the final Reply's markdown (citations numbered as there, no Sources yet):
        each text starts with the one before. Not called when there is nothing to stream (passages without
        a model, a refusal). Called on every piece: must return at once (a channel buffers and sends at its
        own pace) and must not raise. The final Reply may not start with the last draft (the model said
        NO_ANSWER, or failed mid-way): the channel then replaces what it showed."""
        ...


class QuestionLog(Protocol):
    """What was asked, how it was answered and how people rated it (rag.question_log): what the gap report
    reads. The asker is kept only as a salted hash; entries older than the retention are purged."""

    def record(self, entry: LoggedQuestion, *, user_id: str = "") -> None:
        """Keeps entry; user_id (the platform's) is stored only as the log's salted hash."""
        ...

    def rate(self, feedback: Feedback) -> bool:
        """Keeps one rating per answer and rater (the last click wins); False for an unknown answer."""
        ...

    def link(self, answer_id: str, message_ref: str) -> None:
        """The platform's own id of the message that carried the answer: what a Teams click names."""
        ...

    def entries(self, *, since: datetime) -> list[LoggedQuestion]:
        """Questions asked at or after since, oldest first, with their ratings."""
        ...

    def purge_expired(self) -> int:
        """Forgets entries past the retention; returns how many."""
        ...

    def close(self) -> None: ...


class Assistant(Protocol):
    """What every channel adapter talks to. Implemented by rag.conversation.Conversation."""

    async def ask(self, message: IncomingMessage, *, progress: Progress | None = None) -> Reply:
        """Handles one message (a question or a command) in its session or place.

        Never raises for bad input or a failure on our side: returns a Reply saying why, within the
        configured timeouts.
        """
        ...

    async def history(self, session_key: str) -> list[Turn]:
        """The session's turns, oldest first, as the next answer will read them."""
        ...

    async def follows(self, session_key: str) -> bool:
        """The bot takes part in this session: a reply in its thread needs no new mention.

        Asked before a platform's ack: one quick look-up, False when it cannot tell."""
        ...

    async def feedback(self, feedback: Feedback) -> bool:
        """Records a 👍/👎 on an answer (Reply.answer_id); False when the answer is unknown or no log is kept.
        Never raises."""
        ...

    async def delivered(self, answer_id: str, message_ref: str) -> None:
        """The answer went out as this platform message (e.g. "teams:<conversation>:<activity id>"): a
        feedback naming message_ref rates it. Never raises."""
        ...

    async def suggestions(self, *, limit: int = 4) -> tuple[Suggestion, ...]:
        """Questions worth offering a newcomer, from the pages answers cite most; () when there is no history
        to draw them from. Cheap enough to call on every "app home opened"."""
        ...


class SeenKeys(Protocol):
    """What a channel already handled (a redelivered event): one process's memory, or Redis for replicas."""

    async def add_if_new(self, key: str) -> bool:
        """Records key; False when it was already there (a duplicate). Asked before a platform's ack: quick,
        and True (answer) when the store cannot tell, as a lost duplicate costs less than a lost question."""
        ...


class Dedupe(Protocol):
    """Makes the SeenKeys a channel needs: `name` keeps one channel's keys apart from another's."""

    def seen_keys(self, name: str, *, ttl_s: float, max_size: int) -> SeenKeys: ...


class Throttle(Protocol):
    """A token bucket per key (a user): what a channel allows one caller per minute."""

    async def take(self, key: str) -> float:
        """Takes one request from key's bucket: 0.0 when allowed, else the seconds until one would be.
        0.0 when the store cannot tell: a limit that fails closed would refuse every user at once."""
        ...


class Throttles(Protocol):
    """Makes a channel's Throttle: in this process, or in Redis so that replicas count together."""

    def throttle(self, name: str, *, per_minute: float, burst: int) -> Throttle: ...


class Participants(Protocol):
    """Which sessions the bot takes part in, and whose they are: what a reset of a whole channel needs."""

    async def join(self, *, session_key: str, place_key: str, user_id: str) -> None:
        """The user spoke to the bot in this session of this place."""
        ...

    async def follows(self, session_key: str) -> bool:
        """False when the store cannot tell: a missed follow-up costs a mention, a wrong one a reply to
        a conversation between people."""
        ...

    async def sessions_of(self, *, place_key: str, user_id: str) -> tuple[str, ...]: ...

    async def forget_person(self, *, place_key: str, user_id: str) -> None: ...


class SessionGate(Protocol):
    """The order of a session's answers and the reset generation, in one process or across replicas.

    Raises SessionStoreError (rag.sessions) when its backend fails.
    """

    def turn(self, session_key: str) -> AbstractAsyncContextManager[None]:
        """Held for a whole answer: a session's questions are answered one at a time, in order."""
        ...

    def writing(self, session_keys: Sequence[str]) -> AbstractAsyncContextManager[None]:
        """Held around a history write or a reset of these sessions; never across a model call."""
        ...

    async def generation(self, session_key: str) -> int:
        """Bumped by every reset: a turn that read another value before recording is not recorded."""
        ...

    async def bump(self, session_keys: Sequence[str]) -> None:
        """Voids the turns in flight of these sessions (call it with `writing` held)."""
        ...

    async def live(self, prefix: str) -> list[str]:
        """Sessions under prefix with an answer in flight or waiting for its turn."""
        ...


class Telemetry(Protocol):
    """Counts and timings for monitoring (bot.metrics exports them to Prometheus): never text, never ids.

    Called on the event loop: an implementation only updates counters in memory and must not raise.
    """

    def question(self, *, platform: str, outcome: str, seconds: float) -> None:
        """One message handled, from receipt to reply; outcome is one of rag.telemetry.OUTCOMES."""
        ...

    def retrieval(self, *, seconds: float) -> None:
        """One search of the index (dense, lexical, fusion and reranking)."""
        ...

    def model_error(self, *, stage: str) -> None:
        """The chat model failed; stage is "answer" or "condense" (rewriting a follow-up)."""
        ...

    def model_fallback(self) -> None:
        """An answer given from passages alone because the chat model failed."""
        ...

    def first_text(self, *, platform: str, seconds: float) -> None:
        """A streamed answer's first text handed to the channel, seconds after the message arrived."""
        ...

    def feedback(self, *, platform: str, rating: str) -> None:
        """A 👍 ("up") or 👎 ("down") recorded on an answer."""
        ...
