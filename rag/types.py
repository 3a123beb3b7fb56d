"""Frozen values that cross module and port boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Literal


@dataclass(frozen=True, slots=True)
class PageRef:
    """What the cheap listing knows of a page: no body."""

    page_id: str
    space: str
    title: str
    version: int
    ancestor_ids: tuple[str, ...] = ()
    restricted: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """A page with its storage-format body, as fetched from Confluence."""

    page_id: str
    space: str
    title: str
    version: int
    url: str
    body: str
    last_modified: str = ""
    restricted: bool = False


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    page_id: str
    space: str
    title: str
    url: str
    version: int
    last_modified: str
    section: str
    text: str

    def metadata(self) -> dict[str, str | int]:
        return {
            "page_id": self.page_id,
            "space": self.space,
            "title": self.title,
            "url": self.url,
            "version": self.version,
            "last_modified": self.last_modified,
            "section": self.section,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its fused score (higher is better)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class Source:
    page_id: str
    title: str
    url: str
    # What the question log keeps of a cited page: which version said it, in which space.
    version: int = 0
    space: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


class Scope(Enum):
    """What a message speaks for: its own conversation, or the whole place it was sent in."""

    SESSION = "session"
    # A command sent to a channel or a direct message as a whole (a slash command): no session of its own.
    PLACE = "place"


@dataclass(frozen=True, slots=True)
class Place:
    """Where sessions live side by side: a channel, a direct message. Every session key in it starts with key."""

    key: str
    # A direct message: every conversation in it is the user's own, so a reset of the place resets them all.
    private: bool = False


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """What every adapter hands the core: no SDK object ever crosses this line."""

    session_key: str
    text: str
    user_id: str = ""
    platform: str = "terminal"
    place: Place | None = None
    scope: Scope = Scope.SESSION
    # The session is one thread of its place (the wording of a reset says "this thread").
    threaded: bool = False
    # The user attached files: the core says it reads text only when there is no text.
    has_files: bool = False


class ReplyKind(Enum):
    ANSWER = "answer"  # from the wiki, or saying the wiki does not hold it
    NOTICE = "notice"  # the bot's own words: help, a reset, a question refused
    ERROR = "error"  # something failed on our side; the turn is not recorded


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    sources: tuple[Source, ...] = ()
    # False when the wiki did not hold the answer (or the question was refused).
    grounded: bool = True
    mode: Literal["llm", "extractive", "refusal", "error"] = "llm"
    # The question's language as detected ("en", "fr"); "" when no question was answered.
    language: str = ""
    # The spaces of the passages the search found, cited or not: where a question the wiki could not answer
    # belongs in the gap report.
    spaces: tuple[str, ...] = ()
    # Set by the conversation when the answer is in the question log: what a feedback click names.
    answer_id: str = ""

    @property
    def kind(self) -> ReplyKind:
        if self.mode == "error":
            return ReplyKind.ERROR
        return ReplyKind.NOTICE if self.mode == "refusal" else ReplyKind.ANSWER

    @classmethod
    def notice(cls, text: str) -> Reply:
        return cls(text=text, grounded=False, mode="refusal")

    @classmethod
    def error(cls, text: str) -> Reply:
        return cls(text=text, grounded=False, mode="error")


class Rating(Enum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Feedback:
    """A 👍 or 👎 on an answer, as an adapter hands it to the core (Assistant.feedback).

    It names the answer by its Reply.answer_id, or, where a platform hands back only its own id of the message
    (Teams), by the message_ref the adapter gave Assistant.delivered()."""

    answer_id: str
    rating: Rating
    user_id: str = ""
    platform: str = "terminal"
    comment: str = ""
    message_ref: str = ""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A question to offer someone who has not asked yet (Slack's suggested prompts, Teams' starters)."""

    title: str
    message: str


class Outcome(Enum):
    """How a question ended, as the question log and the gap report count it."""

    ANSWERED = "answered"
    NOT_FOUND = "not_found"
    ERROR = "error"  # failed on our side, or took too long
    REFUSED = "refused"  # not asked of the wiki: too long, a file without text


@dataclass(frozen=True, slots=True)
class LoggedQuestion:
    """One question in the question log, with the ratings its answer got."""

    answer_id: str
    asked_at: datetime
    question: str
    outcome: Outcome
    platform: str
    # A salted hash of the platform's user id: who asked twice, never who asked.
    asker: str = ""
    language: str = ""
    answer: str = ""
    # The pages the answer cited, with the versions it read.
    sources: tuple[Source, ...] = ()
    spaces: tuple[str, ...] = ()
    up: int = 0
    down: int = 0
    comments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncReport:
    started_at: datetime
    finished_at: datetime
    ok: bool
    full: bool = False
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    # Pages that failed to parse: not indexed, named in `errors`, tried again by every later run.
    skipped: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    # Chunks longer than the model's window (their tail is not embedded): 0 but for blobs (runs of
    # characters without spaces), which are cut by characters and embedded from their start.
    chunks_truncated: int = 0
    errors: tuple[str, ...] = field(default_factory=tuple)
    # Where the time went, in seconds: what the ingest bench reports.
    fetch_s: float = 0.0
    chunk_s: float = 0.0
    embed_s: float = 0.0
    write_s: float = 0.0
    # Pages indexed only up to PAGE_MAX_CHARS or PAGE_MAX_CHUNKS (the log names each one and what was cut).
    pages_cut: int = 0
    # Pages left out as restricted (themselves or through an ancestor): the bot answers everyone, so it
    # indexes only what everyone may read (CONFLUENCE_INCLUDE_RESTRICTED=true indexes them too).
    skipped_restricted: int = 0

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, object]:
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "ok": self.ok,
            "full": self.full,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "chunks_embedded": self.chunks_embedded,
            "chunks_total": self.chunks_total,
            "chunks_truncated": self.chunks_truncated,
            "pages_cut": self.pages_cut,
            "skipped_restricted": self.skipped_restricted,
            "duration_s": round(self.duration_s, 3),
            "time_split_s": {
                "fetch": round(self.fetch_s, 3),
                "chunk": round(self.chunk_s, 3),
                "embed": round(self.embed_s, 3),
                "write": round(self.write_s, 3),
            },
            "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True)
class IndexedPage:
    """What the ledger keeps of an indexed page: enough to tell a changed page and drop its old chunks."""

    page_id: str
    space: str
    title: str
    version: int
    chunk_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActiveCollection:
    """The collection readers use and what built it, as the ledger records it."""

    name: str
    fingerprint: str
    layout: str
    revision: int


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether a replica can answer from the index: the ledger's collection is in the store and not empty."""

    ready: bool
    reason: str
    collection: str | None
    # What the ledger lists, and what the store holds (None when it could not say).
    chunks: int
    stored_chunks: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "reason": self.reason,
            "collection": self.collection,
            "chunks": self.chunks,
            "stored_chunks": self.stored_chunks,
        }


@dataclass(frozen=True, slots=True)
class IndexSummary:
    """The active collection at a glance, for status and health."""

    collection: str | None
    fingerprint: str | None
    pages: int
    chunks: int
    spaces: tuple[str, ...]
