"""The composition root: every client, model and store is built here, from settings, once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache, cached_property, partial
from typing import TYPE_CHECKING, cast

from bot.config import Settings, SettingsError
from bot.metrics import Metrics, build_metrics
from bot.runtime import SyncBusy, sync_lock
from rag.abstention import AbstentionPolicy
from rag.answering import Prompts
from rag.chunking import CHUNK_FORMAT, ChunkedPage, PageLimits, chunk_bounded
from rag.confluence import ConfluenceSource, RestClient, bounded_retry
from rag.conversation import Conversation, Limits
from rag.crosslingual import Glossary, QueryTranslator
from rag.embedding_runtime import LazyEmbedder, token_scaled_length
from rag.index import ChromaStore, open_chroma
from rag.knowledge import KnowledgeBase, Ledger
from rag.language import LanguageDetector
from rag.lexical_index import SqliteLexicalIndex
from rag.ports import (
    ChatModel,
    Embedder,
    LeaseLost,
    LedgerStore,
    LexicalIndex,
    PageSource,
    QuestionLog,
    Reranker,
    SessionStore,
    SyncLease,
    VectorStoreError,
)
from rag.rerank import CrossEncoderReranker
from rag.retrieval import HybridRetriever
from rag.service import WikiAssistant
from rag.sync import Progress, sync_once
from rag.types import Page, SyncReport

if TYPE_CHECKING:
    from rag.shared_state import RedisChatState

log = logging.getLogger(__name__)


def build_embedder(settings: Settings) -> Embedder:
    from rag.embedding import EmbedderError
    from rag.embedding import build_embedder as build

    try:
        return build(
            settings.embed_model,
            backend=settings.embed_backend,
            cache_dir=settings.model_cache_path,
            batch_size=settings.embed_batch_size,
        )
    except EmbedderError as exc:
        raise SettingsError(f"EMBED_MODEL: {exc}") from None


def build_chat_model(settings: Settings) -> ChatModel | None:
    if not settings.litellm_model:
        return None
    from rag.llm import LiteLLMChatModel

    try:
        return LiteLLMChatModel(
            model=settings.litellm_model,
            api_base=settings.litellm_api_base,
            api_key=settings.litellm_api_key.get_secret_value(),
            timeout_s=settings.litellm_timeout_s,
            num_retries=settings.litellm_num_retries,
            fallbacks=settings.fallback_models,
            temperature=settings.litellm_temperature,
        )
    except ValueError as exc:
        raise SettingsError(f"LITELLM_MODEL: {exc}") from None


def build_sessions(settings: Settings) -> SessionStore:
    from rag.sessions import SessionStoreError

    try:
        return _sessions(settings)
    except SessionStoreError as exc:
        name = "REDIS_URL" if settings.redis_url.get_secret_value() else "SESSION_DB_PATH"
        raise SettingsError(f"{name}: {exc}") from None


def _sessions(settings: Settings) -> SessionStore:
    from rag.sessions import RedisSessionStore, SqliteSessionStore

    idle = settings.session_idle_minutes * 60.0
    if settings.redis_url.get_secret_value():
        return cast(
            SessionStore,
            RedisSessionStore(
                settings.redis_url.get_secret_value(), max_turns=settings.session_max_turns, idle_seconds=idle
            ),
        )
    return cast(
        SessionStore,
        SqliteSessionStore(settings.sessions_path, max_turns=settings.session_max_turns, idle_seconds=idle),
    )


@dataclass(frozen=True)
class SharedIndexState:
    """Where replicas agree on the index: the ledger, and (with Redis) the lease of its one writer."""

    ledger: LedgerStore
    lease: SyncLease | None
    close: Callable[[], None]


def lease_ttl_s(interval_s: float) -> float:
    """The writer's lease expires after half an interval (3 s at least, 30 s at most), renewed every third of
    that: a dead writer is replaced by another replica's tick within about one interval."""
    return min(30.0, max(3.0, interval_s / 2))


def build_index_state(settings: Settings) -> SharedIndexState:
    """The SQLite ledger in DATA_DIR; with REDIS_URL, the ledger and the writer's lease in Redis, so a replica
    with an empty data folder serves the shared index and one replica syncs it for all."""
    url = settings.redis_url.get_secret_value()
    if not url:
        sqlite = Ledger(settings.state_path)
        return SharedIndexState(sqlite, None, sqlite.close)
    import redis

    from rag.lease import RedisLease
    from rag.ledger_redis import RedisLedger

    try:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            health_check_interval=30,
        )
        client.ping()
    except ValueError:
        raise SettingsError("REDIS_URL is not a valid redis://, rediss:// or unix:// URL") from None
    except redis.RedisError as exc:
        raise SettingsError(
            f"REDIS_URL: cannot reach Redis for the index ledger: {type(exc).__name__}"
        ) from None
    # One deployment per CHROMA_COLLECTION prefix: two bots can share a Redis without sharing an index.
    prefix = f"wikibot:index:{settings.chroma_collection}"
    lease = RedisLease(client, key=f"{prefix}:lease", ttl_s=lease_ttl_s(settings.sync_interval_minutes * 60))
    ledger = RedisLedger(client, prefix=prefix, fence=(lease.key, lease.token))

    def close() -> None:
        lease.release()
        client.close()

    return SharedIndexState(ledger, lease, close)


def build_chat_state(settings: Settings) -> RedisChatState | None:
    """With REDIS_URL, what replicas must agree on about chats (dedupe, threads, turns) lives in Redis."""
    from rag.sessions import SessionStoreError
    from rag.shared_state import RedisChatState

    url = settings.redis_url.get_secret_value()
    if not url:
        return None
    try:
        return RedisChatState(url)
    except SessionStoreError as exc:
        raise SettingsError(f"REDIS_URL: {exc}") from None


def build_question_log(settings: Settings) -> QuestionLog | None:
    """The question log in DATA_DIR, or in Redis with REDIS_URL (one report for every replica); None when
    QUESTION_LOG_ENABLED=false."""
    from rag.question_log import QuestionLogError, RedisQuestionLog, SqliteQuestionLog

    if not settings.question_log_enabled:
        return None
    retention = float(settings.question_log_retention_days)
    url = settings.redis_url.get_secret_value()
    try:
        if url:
            return cast(
                QuestionLog,
                RedisQuestionLog.from_url(
                    url, retention_days=retention, prefix=f"wikibot:questions:{settings.chroma_collection}"
                ),
            )
        return cast(QuestionLog, SqliteQuestionLog(settings.question_log_path, retention_days=retention))
    except QuestionLogError as exc:
        raise SettingsError(f"{'REDIS_URL' if url else 'DATA_DIR'}: {exc}") from None


def build_source(settings: Settings) -> PageSource:
    settings.require_confluence()
    import requests
    from atlassian import Confluence
    from requests.adapters import HTTPAdapter

    token = settings.confluence_token.get_secret_value()
    auth: dict[str, str] = (
        {"token": token}
        if token
        else {
            "username": settings.confluence_username,
            "password": settings.confluence_password.get_secret_value(),
        }
    )
    url = settings.confluence_url.rstrip("/")
    # Our own retry policy on the session the client uses: its `backoff_and_retry` bounds only HTTP
    # statuses, and retries a refused connection or an unknown host without end (see bounded_retry).
    session = requests.Session()
    session.verify = settings.confluence_verify_ssl
    adapter = HTTPAdapter(
        max_retries=bounded_retry(
            retries=settings.confluence_max_retries, backoff_s=settings.confluence_backoff_s
        )
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client = Confluence(  # type: ignore[no-untyped-call]
        url=url,
        cloud=settings.is_cloud,
        timeout=settings.confluence_timeout_s,
        session=session,
        # urllib3 honours Retry-After within the same budget; the client's own extra 429 retry is off.
        backoff_and_retry=False,
        retry_with_header=False,
        **auth,
    )
    try:
        return ConfluenceSource(
            cast(RestClient, client),
            spaces=settings.spaces,
            page_limit=settings.confluence_page_limit,
            overlap=timedelta(minutes=settings.confluence_sync_overlap_minutes),
            retries=settings.confluence_max_retries,
        )
    except ValueError as exc:
        raise SettingsError(f"CONFLUENCE_SPACE: {exc}") from None


@dataclass
class Core:
    """Everything the CLI, the web server and the scheduler share."""

    settings: Settings
    embedder: Embedder
    kb: KnowledgeBase
    lexical: LexicalIndex
    retriever: HybridRetriever
    sessions: SessionStore
    # What the channels talk to, and the wiki answerer behind it (the benches ask it directly).
    assistant: Conversation
    answerer: WikiAssistant
    # Counts and timings of this core (its own registry); the web server exposes them at /metrics.
    metrics: Metrics
    _source: PageSource | None = field(default=None, repr=False)
    _state: SharedIndexState | None = field(default=None, repr=False)
    # Shared by replicas when REDIS_URL is set: the adapters' redelivery dedupe comes from here too.
    chat_state: RedisChatState | None = None
    # None when QUESTION_LOG_ENABLED=false.
    questions: QuestionLog | None = None

    @property
    def lease(self) -> SyncLease | None:
        """The index writer's lease when replicas share the index (REDIS_URL); None on one machine."""
        return self._state.lease if self._state is not None else None

    @cached_property
    def source(self) -> PageSource:
        return self._source or build_source(self.settings)

    def sync(
        self, *, full: bool = False, progress: Progress | None = None, stop: threading.Event | None = None
    ) -> SyncReport:
        """One sync under the data folder's lock: two processes never sync one index at once."""
        source = self.source
        limits = PageLimits(max_chars=self.settings.page_max_chars, max_chunks=self.settings.page_max_chunks)

        # The token-scaled length asks the model for its window: built on the first page chunked, so a sync
        # that fails on Confluence (or has nothing to do) never loads a model. A race builds it twice, harmlessly.
        @cache
        def length() -> Callable[[str], int]:
            return token_scaled_length(self.embedder, chunk_size=self.settings.chunk_size)

        def chunker(page: Page) -> ChunkedPage:
            return chunk_bounded(
                page,
                limits=limits,
                chunk_size=self.settings.chunk_size,
                chunk_overlap=self.settings.chunk_overlap,
                length_function=length(),
            )

        with sync_lock(self.settings.data_dir), self._as_writer():
            report = sync_once(
                source=source,
                index=self.kb,
                embedder=self.embedder,
                chunker=chunker,
                include_restricted=self.settings.confluence_include_restricted,
                full=full,
                progress=progress,
                stop=stop,
            )
        # The writer's own process catches up at once, through the same path as every other replica, so
        # its questions never pay for it; the others catch up at their next question.
        try:
            self.retriever.catch_up()
        except VectorStoreError as exc:
            log.warning("lexical index not caught up after the sync (the next question tries again): %s", exc)
        return report

    @contextmanager
    def _as_writer(self) -> Iterator[None]:
        """With replicas, only the lease holder syncs: the others are told who does (SyncBusy)."""
        lease = self.lease
        if lease is None:
            yield
            return
        try:
            if not lease.acquire():
                raise SyncBusy(
                    f"replica {lease.holder() or 'another'} is the index's writer and runs the sync: "
                    "POST /admin/sync on any replica reaches it"
                )
            yield
        except LeaseLost as exc:
            raise SyncBusy(f"the sync stopped: {exc}") from None

    def warm(self) -> None:
        """Loads the models and builds the in-memory indexes now rather than on a user's question."""
        self.embedder.embed_query("warm-up")
        self.answerer.warm()
        self.retriever.warm()

    def close(self) -> None:
        self.sessions.close()
        if self.questions is not None:
            self.questions.close()
        self.lexical.close()
        self.kb.close()
        if self._state is not None:
            self._state.close()
        self.embedder.close()


def build_core(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    source: PageSource | None = None,
    chat_model: ChatModel | None = None,
    sessions: SessionStore | None = None,
    reranker: Reranker | None = None,
) -> Core:
    """Builds the core; tests may hand in port fakes, everything else comes from settings."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"DATA_DIR: cannot use {settings.data_dir} as the data folder: {exc}") from None
    emb: Embedder = embedder or LazyEmbedder(partial(build_embedder, settings))
    try:
        client = open_chroma(
            path=settings.chroma_path,
            host=settings.chroma_host,
            port=settings.chroma_port,
            ssl=settings.chroma_ssl,
        )
    except ValueError as exc:
        where = (
            f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else settings.chroma_path
        )
        raise SettingsError(f"CHROMA_HOST: cannot open the Chroma index at {where}: {exc}") from None
    state = build_index_state(settings)
    kb = KnowledgeBase(
        ChromaStore(client, ef_search=settings.chroma_hnsw_ef_search),
        state.ledger,
        prefix=settings.chroma_collection,
        layout=f"chunks-v{CHUNK_FORMAT}/{settings.chunk_size}/{settings.chunk_overlap}",
        shared=state.lease is not None,
    )
    lexical = SqliteLexicalIndex(settings.lexical_path, kb)
    language = LanguageDetector()
    retriever = HybridRetriever(
        kb,
        emb,
        k=settings.retrieval_top_k,
        max_per_page=settings.retrieval_max_per_page,
        lexical=lexical,
        mode=settings.retrieval_mode,
        reranker=(reranker or CrossEncoderReranker()) if settings.retrieval_rerank else None,
        rerank_candidates=settings.retrieval_rerank_candidates,
        translator=QueryTranslator(Glossary.french()) if settings.retrieval_translate else None,
        passage_language=language.detect,
    )
    store = sessions or build_sessions(settings)
    metrics = build_metrics(kb)
    try:
        system_prompt = (
            settings.system_prompt_file.read_text(encoding="utf-8") if settings.system_prompt_file else None
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"SYSTEM_PROMPT_FILE: cannot read {settings.system_prompt_file}: {exc}") from None
    answerer = WikiAssistant(
        retriever=retriever,
        chat_model=chat_model or build_chat_model(settings),
        prompts=Prompts.load(system_prompt),
        max_question_chars=settings.max_question_chars,
        abstention=AbstentionPolicy(
            min_similarity=settings.retrieval_min_similarity,
            min_rerank_score=settings.retrieval_min_rerank_score,
            weak_rerank_score=settings.retrieval_weak_rerank_score,
            weak_similarity=settings.retrieval_weak_similarity,
            unseen_name_rerank_score=settings.retrieval_unseen_name_rerank_score,
        ),
        language=language,
        telemetry=metrics,
    )
    limits = Limits(
        max_question_chars=settings.max_question_chars,
        # Room for the model's own timeout and retries: this guard is only for a call that never returns.
        answer_timeout_s=settings.litellm_timeout_s * (settings.litellm_num_retries + 1) + 30,
    )
    chat_state = build_chat_state(settings)
    idle_s = settings.session_idle_minutes * 60.0
    questions = build_question_log(settings)
    assistant = Conversation(
        answerer=answerer,
        sessions=store,
        limits=limits,
        telemetry=metrics,
        questions=questions,
        participants=chat_state.participants(idle_s=idle_s) if chat_state else None,
        # A turn also waits for an answer slot: its lock outlives two answer deadlines before it expires.
        gate=chat_state.gate(turn_timeout_s=2 * limits.answer_timeout_s + 60, idle_s=idle_s)
        if chat_state
        else None,
    )
    return Core(
        settings,
        emb,
        kb,
        lexical,
        retriever,
        store,
        assistant,
        answerer,
        metrics,
        source,
        state,
        chat_state=chat_state,
        questions=questions,
    )
