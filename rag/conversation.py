"""The conversation every channel talks to: commands, sessions, turn order, resets and timeouts.

An adapter turns a platform event into an IncomingMessage and the Reply back into a platform message;
everything in between is decided here, once for every channel.

Per session, questions are answered one at a time (a quick follow-up sees the answer before it). A reset
does not wait for an answer in flight: it voids that answer's turn, so the answer is still delivered but
never written into the history the reset just cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

from rag import telemetry, texts
from rag.commands import Command, parse_command
from rag.participants import MemoryParticipants
from rag.ports import (
    Answerer,
    Participants,
    Progress,
    QuestionLog,
    SessionGate,
    SessionStore,
    Telemetry,
)
from rag.sessions import SessionStoreError
from rag.telemetry import NoTelemetry, outcome_of
from rag.types import (
    Feedback,
    IncomingMessage,
    LoggedQuestion,
    Outcome,
    Reply,
    ReplyKind,
    Scope,
    Suggestion,
    Turn,
)

log = logging.getLogger(__name__)

# The one reply of an answer past its deadline: compared by identity, so telemetry counts a timeout apart
# from other errors without a new reply mode that every adapter would have to know.
_TIMED_OUT = Reply.error(texts.TIMEOUT)
_SUGGESTION_WINDOW = timedelta(days=30)
_SUGGESTION_TTL_S = 600.0
_MAX_SUGGESTIONS = 10
_LOGGED_OUTCOMES = {
    telemetry.ANSWER: Outcome.ANSWERED,
    telemetry.EXTRACTIVE: Outcome.ANSWERED,
    telemetry.NOT_FOUND: Outcome.NOT_FOUND,
    telemetry.NOTICE: Outcome.REFUSED,
    telemetry.ERROR: Outcome.ERROR,
    telemetry.TIMEOUT: Outcome.ERROR,
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_question_chars: int = 2000
    # A guard for a call that never returns: the model's own timeout and retries come first.
    answer_timeout_s: float = 180.0
    # A chat platform refuses a command not acknowledged within 3 s, and the reset is what it waits for.
    reset_timeout_s: float = 2.0
    # Answers computed at once, every channel together: the model and the CPU are the shared resources.
    max_concurrent_answers: int = 8


class _Session:
    """What the gate keeps of a session while someone holds it: alive only as long as it is used."""

    __slots__ = ("__weakref__", "generation", "turn", "write")

    def __init__(self) -> None:
        self.turn = asyncio.Lock()  # held for a whole answer: questions queue in order
        self.write = asyncio.Lock()  # held around a history write or a reset: never across a model call
        self.generation = 0  # bumped by every reset: a turn that started before it is not recorded


class LocalSessionGate:
    """rag.ports.SessionGate in one process: asyncio locks per live session (the default without Redis).

    A session lives while a turn, a write or a reset holds it (weak references): the generation read at the
    start of a turn is compared by the same object before recording.
    """

    def __init__(self) -> None:
        self._live: weakref.WeakValueDictionary[str, _Session] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def turn(self, session_key: str) -> AsyncIterator[None]:
        session = self._session(session_key)  # before waiting: a reset sees the questions queued too
        async with session.turn:
            yield

    @contextlib.asynccontextmanager
    async def writing(self, session_keys: Sequence[str]) -> AsyncIterator[None]:
        sessions = [self._session(key) for key in session_keys]
        async with contextlib.AsyncExitStack() as held:
            for session in sessions:
                await held.enter_async_context(session.write)
            yield

    async def generation(self, session_key: str) -> int:
        return self._session(session_key).generation

    async def bump(self, session_keys: Sequence[str]) -> None:
        for key in session_keys:
            self._session(key).generation += 1

    async def live(self, prefix: str) -> list[str]:
        return [key for key in list(self._live.keys()) if key.startswith(prefix)]

    def _session(self, session_key: str) -> _Session:
        session = self._live.get(session_key)
        if session is None:
            session = _Session()
            self._live[session_key] = session
        return session


class _TimedProgress:
    """A channel's Progress, telling telemetry when the first streamed text went out."""

    def __init__(self, inner: Progress, started: float, first_text: Callable[..., None]) -> None:
        self._inner = inner
        self._started = started
        self._first_text: Callable[..., None] | None = first_text

    async def working(self) -> None:
        await self._inner.working()

    async def draft(self, text: str) -> None:
        if self._first_text is not None:
            self._first_text(seconds=time.perf_counter() - self._started)
            self._first_text = None
        await self._inner.draft(text)


class Conversation:
    """Implements rag.ports.Assistant over an Answerer and a SessionStore.

    Who takes part in which thread (`participants`) and the sessions' turns and resets (`gate`) are kept in
    this process unless the composition root hands in shared ones (Redis, for several replicas).
    """

    def __init__(
        self,
        *,
        answerer: Answerer,
        sessions: SessionStore,
        limits: Limits | None = None,
        participants: Participants | None = None,
        gate: SessionGate | None = None,
        telemetry: Telemetry | None = None,
        questions: QuestionLog | None = None,
    ) -> None:
        self._answerer = answerer
        # None: no question is kept (QUESTION_LOG_ENABLED=false), and answers carry no feedback id.
        self._questions = questions
        self._telemetry: Telemetry = telemetry or NoTelemetry()
        self._sessions = sessions
        self._limits = limits or Limits()
        self._participants: Participants = participants or MemoryParticipants()
        self._gate: SessionGate = gate or LocalSessionGate()
        # asyncio primitives belong to one event loop; a CLI or a test may run the core under several.
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        # The suggested questions, computed at most every few minutes: (expiry on the loop's clock, them).
        self._suggested: tuple[float, tuple[Suggestion, ...]] | None = None
        # A reset past its deadline keeps running; the loop keeps only weak references to tasks.
        self._background: set[asyncio.Task[Reply]] = set()

    async def ask(self, message: IncomingMessage, *, progress: Progress | None = None) -> Reply:
        started = time.perf_counter()
        if progress is not None:
            progress = _TimedProgress(
                progress, started, partial(self._telemetry.first_text, platform=message.platform)
            )
        reply, question = await self._handle(message, progress)
        outcome = outcome_of(reply, timed_out=reply is _TIMED_OUT)
        self._telemetry.question(
            platform=message.platform, outcome=outcome, seconds=time.perf_counter() - started
        )
        if question:
            reply = await self._log(message, question, reply, outcome)
        return reply

    async def _handle(self, message: IncomingMessage, progress: Progress | None) -> tuple[Reply, str]:
        """The reply, and the question it answers ("" for a command: commands are not logged)."""
        text = message.text.strip()
        command = parse_command(text)
        if command is Command.RESET:
            return await self._bounded_reset(message), ""
        if message.has_files and not text:
            return Reply.notice(texts.FILE_ONLY), ""
        if command is Command.HELP or not text or message.scope is Scope.PLACE:
            return Reply.notice(texts.HELP), ""
        if len(text) > self._limits.max_question_chars:
            return Reply.notice(texts.too_long(len(text), self._limits.max_question_chars)), text
        await self._join(message)
        if progress is not None:
            await progress.working()
        return await self._turn(message.session_key, text, progress), text

    async def feedback(self, feedback: Feedback) -> bool:
        # Teams names the answer only by its message (message_ref, see delivered()).
        if self._questions is None or not (feedback.answer_id or feedback.message_ref):
            return False
        try:
            recorded = await asyncio.to_thread(self._questions.rate, feedback)
        except Exception as exc:
            log.error("cannot record feedback: %s", exc)
            return False
        if recorded:
            self._telemetry.feedback(platform=feedback.platform, rating=feedback.rating.value)
        return recorded

    async def delivered(self, answer_id: str, message_ref: str) -> None:
        if self._questions is None or not answer_id or not message_ref:
            return
        try:
            await asyncio.to_thread(self._questions.link, answer_id, message_ref)
        except Exception as exc:
            log.error("cannot link an answer to its message: %s", exc)

    async def suggestions(self, *, limit: int = 4) -> tuple[Suggestion, ...]:
        """The pages answers cited most over the last weeks (answers someone disliked left out), as questions.

        Page titles, not people's questions: what someone asked is theirs, and may name a person or a case."""
        if self._questions is None or limit < 1:
            return ()
        loop = asyncio.get_running_loop()
        if self._suggested is not None and self._suggested[0] > loop.time():
            return self._suggested[1][:limit]
        since = datetime.now(UTC) - _SUGGESTION_WINDOW
        try:
            entries = await asyncio.to_thread(self._questions.entries, since=since)
        except Exception as exc:
            log.error("cannot read the question log for suggestions: %s", exc)
            return ()
        cited: Counter[str] = Counter()
        titles: dict[str, str] = {}
        for entry in entries:
            if entry.outcome is Outcome.ANSWERED and not entry.down:
                for source in entry.sources:
                    cited[source.page_id] += 1
                    titles[source.page_id] = source.title
        found = tuple(texts.suggestion(titles[page_id]) for page_id, _ in cited.most_common(_MAX_SUGGESTIONS))
        if found:  # nothing yet: the first answers cited should show at once
            self._suggested = (loop.time() + _SUGGESTION_TTL_S, found)
        return found[:limit]

    async def _log(self, message: IncomingMessage, question: str, reply: Reply, outcome: str) -> Reply:
        """Keeps the question in the log; an answer then carries the id its feedback buttons name."""
        if self._questions is None:
            return reply
        entry = LoggedQuestion(
            answer_id=secrets.token_urlsafe(12),
            asked_at=datetime.now(UTC),
            question=question,
            outcome=_LOGGED_OUTCOMES.get(outcome, Outcome.ERROR),
            platform=message.platform,
            language=reply.language,
            answer=reply.text if reply.kind is ReplyKind.ANSWER else "",
            sources=reply.sources if reply.grounded else (),
            spaces=reply.spaces,
        )
        try:
            await asyncio.to_thread(self._questions.record, entry, user_id=message.user_id)
        except Exception as exc:
            # The user still gets the answer, without feedback buttons: there would be nothing to rate.
            log.error("cannot log the question: %s", exc)
            return reply
        return replace(reply, answer_id=entry.answer_id) if reply.kind is ReplyKind.ANSWER else reply

    async def follows(self, session_key: str) -> bool:
        return await self._participants.follows(session_key)

    async def history(self, session_key: str) -> list[Turn]:
        return await asyncio.to_thread(self._sessions.history, session_key)

    async def close(self) -> None:
        """Waits for resets still running past their deadline (they are short store calls)."""
        await asyncio.gather(*list(self._background), return_exceptions=True)

    # ---- questions

    async def _turn(self, session_key: str, question: str, progress: Progress | None) -> Reply:
        try:
            async with self._gate.turn(session_key):
                generation = await self._gate.generation(session_key)
                async with self._answer_slots():
                    reply = await self._answer(session_key, question, progress)
                if reply.kind is ReplyKind.ANSWER:
                    await self._record(session_key, generation, question, reply)
        except SessionStoreError as exc:
            # The shared gate (Redis) failed: the history lives there too, so no answer could be grounded in it.
            log.error("cannot take the turn of session %s: %s", session_key[:80], exc)
            return Reply.error(texts.FAILURE)
        return reply

    async def _answer(self, session_key: str, question: str, progress: Progress | None) -> Reply:
        try:
            history = await asyncio.to_thread(self._sessions.history, session_key)
            return await asyncio.wait_for(
                self._answerer.answer(question, history, progress=progress), self._limits.answer_timeout_s
            )
        except TimeoutError:
            log.warning(
                "no answer within %.0f s for session %s", self._limits.answer_timeout_s, session_key[:80]
            )
            return _TIMED_OUT
        except SessionStoreError as exc:
            log.error("cannot read the history of session %s: %s", session_key[:80], exc)
            return Reply.error(texts.FAILURE)
        except Exception:
            # A bug: the user gets a short message, the log gets the traceback.
            log.exception("answering failed for session %s", session_key[:80])
            return Reply.error(texts.FAILURE)

    async def _record(self, session_key: str, generation: int, question: str, reply: Reply) -> None:
        try:
            async with self._gate.writing([session_key]):
                if await self._gate.generation(session_key) != generation:
                    log.info(
                        "session %s was reset while answering: the turn is not recorded", session_key[:80]
                    )
                    return
                await asyncio.to_thread(
                    self._sessions.append,
                    session_key,
                    [Turn("user", question), Turn("assistant", reply.text)],
                )
        except SessionStoreError as exc:
            # The user still gets the answer; only the next follow-up loses this turn.
            log.error("cannot record the turn of session %s: %s", session_key[:80], exc)

    # ---- resets

    async def _bounded_reset(self, message: IncomingMessage) -> Reply:
        task = asyncio.get_running_loop().create_task(self._reset(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        try:
            # Shielded: past the deadline the user hears so, and the reset still completes.
            return await asyncio.wait_for(asyncio.shield(task), self._limits.reset_timeout_s)
        except TimeoutError:
            log.warning(
                "a reset took longer than %.1f s; it goes on in the background", self._limits.reset_timeout_s
            )
            return Reply.notice(texts.RESET_SLOW)

    async def _reset(self, message: IncomingMessage) -> Reply:
        try:
            return await self._reset_scope(message)
        except (SessionStoreError, ValueError) as exc:
            log.error("reset failed: %s", exc)
        except Exception:
            log.exception("reset failed")
        return Reply.notice(texts.RESET_FAILED)

    async def _reset_scope(self, message: IncomingMessage) -> Reply:
        if message.scope is Scope.SESSION:
            await self._forget([message.session_key], partial(self._store_reset, message.session_key))
            # The bot stays in the thread: a reply there after the reset needs no new mention.
            await self._join(message)
            return Reply.notice(texts.RESET_THREAD if message.threaded else texts.RESET_SESSION)
        place = message.place
        if place is None or not place.key:
            return Reply.notice(texts.RESET_NO_PLACE)
        if place.private:
            live = await self._gate.live(place.key)
            count = await self._forget(
                live, partial(asyncio.to_thread, self._sessions.reset_prefix, place.key)
            )
            return Reply.notice(texts.RESET_PRIVATE_DONE if count else texts.RESET_PRIVATE_NOTHING)
        if not message.user_id:
            return Reply.notice(texts.RESET_NO_PLACE)
        keys = await self._participants.sessions_of(place_key=place.key, user_id=message.user_id)
        for key in keys:
            await self._forget([key], partial(self._store_reset, key))
        await self._participants.forget_person(place_key=place.key, user_id=message.user_id)
        return Reply.notice(texts.reset_place_done(len(keys)) if keys else texts.RESET_PLACE_NOTHING)

    async def _store_reset(self, session_key: str) -> int:
        await asyncio.to_thread(self._sessions.reset, session_key)
        return 1

    async def _forget(self, session_keys: Sequence[str], clear: Callable[[], Awaitable[int]]) -> int:
        """Voids the turns in flight of these sessions, then clears the store, with their writes held."""
        async with self._gate.writing(session_keys):
            await self._gate.bump(session_keys)
            return await clear()

    # ---- bookkeeping

    def _answer_slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self._limits.max_concurrent_answers))
        return self._slots[1]

    async def _join(self, message: IncomingMessage) -> None:
        place = message.place
        if place is not None and not place.private and message.scope is Scope.SESSION:
            await self._participants.join(
                session_key=message.session_key, place_key=place.key, user_id=message.user_id
            )
