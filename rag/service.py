"""The assistant every channel talks to: one message in, one cited reply out, per session."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence

from rag.answering import (
    EXTRACTIVE_INTRO,
    MODEL_DOWN_INTRO,
    Prompts,
    cite,
    detect_language,
    extractive,
    not_found,
)
from rag.commands import HELP_TEXT, Command, parse_command
from rag.ports import ChatModel, SessionStore
from rag.retrieval import HybridRetriever, Retrieved
from rag.types import IncomingMessage, Reply, Turn

log = logging.getLogger(__name__)

RESET_DONE = "Done: I've forgotten this conversation. Ask me anything about the wiki."
EMPTY_INDEX = "The wiki index is empty for now: an administrator needs to run `wikibot ingest` first."
BROKEN = "Sorry, something went wrong on my side while answering. Please try again in a moment."


class WikiAssistant:
    """Implements rag.ports.Assistant. Blocking work (embedding, Chroma, SQLite) runs in threads."""

    def __init__(
        self,
        *,
        retriever: HybridRetriever,
        sessions: SessionStore,
        chat_model: ChatModel | None,
        prompts: Prompts,
        max_question_chars: int = 2000,
        min_similarity: float = 0.3,
    ) -> None:
        self._retriever = retriever
        self._sessions = sessions
        self._model = chat_model
        self._prompts = prompts
        self._max_chars = max_question_chars
        self._min_similarity = min_similarity
        # One lock per live session: a user's rapid follow-ups are answered in order, with history.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def ask(self, message: IncomingMessage) -> Reply:
        text = message.text.strip()
        command = parse_command(text)
        if command is Command.RESET:
            # In the session's turn: an answer still running must not write its turn after the reset.
            async with self._lock_of(message.session_key):
                await self.reset(message.session_key)
            return Reply(text=RESET_DONE, grounded=False, mode="refusal")
        if command is Command.HELP:
            return Reply(text=HELP_TEXT, grounded=False, mode="refusal")
        if not text:
            return Reply(text="Please ask a question about the wiki.", grounded=False, mode="refusal")
        if len(text) > self._max_chars:
            return Reply(
                text=f"Your question is too long ({len(text)} characters; the limit is {self._max_chars}). "
                "Please shorten it.",
                grounded=False,
                mode="refusal",
            )
        async with self._lock_of(message.session_key):
            try:
                return await self._answer(message.session_key, text)
            except Exception:
                log.exception("answering failed for session %s", message.session_key[:80])
                return Reply(text=BROKEN, grounded=False, mode="error")

    def _lock_of(self, session_key: str) -> asyncio.Lock:
        lock = self._locks.get(session_key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_key] = lock
        return lock

    async def reset(self, session_key: str) -> None:
        await asyncio.to_thread(self._sessions.reset, session_key)

    async def reset_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("an empty prefix would reset every session")
        return await asyncio.to_thread(self._sessions.reset_prefix, prefix)

    async def retrieve(self, message: IncomingMessage, *, k: int | None = None) -> Retrieved:
        """The passages the next answer in this session would use, without answering or recording a turn."""
        question = message.text.strip()
        history = await asyncio.to_thread(self._sessions.history, message.session_key)
        _, retrieved = await self._retrieve(history, question, k=k)
        return retrieved

    async def _retrieve(
        self, history: Sequence[Turn], question: str, *, k: int | None = None
    ) -> tuple[str, Retrieved]:
        standalone = await self._standalone(history, question)
        retrieved = await asyncio.to_thread(self._retriever.search, standalone, k=k)
        return standalone, retrieved

    async def _answer(self, session_key: str, question: str) -> Reply:
        language = detect_language(question)
        history = await asyncio.to_thread(self._sessions.history, session_key)
        standalone, retrieved = await self._retrieve(history, question)
        if not retrieved.hits:
            ready = await asyncio.to_thread(self._retriever.ready)
            reply = not_found(language) if ready else Reply(text=EMPTY_INDEX, grounded=False, mode="error")
        elif self._model is None:
            if retrieved.dense_used and retrieved.best_similarity < self._min_similarity:
                reply = not_found(language)
            else:
                reply = extractive(retrieved.hits, language, intro=EXTRACTIVE_INTRO)
        else:
            try:
                answer = await self._model.complete(
                    messages=self._prompts.answer_messages(history, standalone, retrieved.hits, language)
                )
                reply = cite(answer, retrieved.hits)
            except LookupError:
                reply = not_found(language)
            except Exception as exc:
                log.warning("chat model failed, answering with passages: %s", exc)
                reply = extractive(retrieved.hits, language, intro=MODEL_DOWN_INTRO)
        if reply.mode != "error":
            await asyncio.to_thread(
                self._sessions.append,
                session_key,
                [Turn("user", question), Turn("assistant", reply.text)],
            )
        return reply

    async def _standalone(self, history: Sequence[Turn], question: str) -> str:
        """A follow-up condensed with its history into a question retrieval can use on its own."""
        if not history:
            return question
        if self._model is None:
            # Without a model, the previous question carries the topic ("and on Linux?").
            last_user = next((t.content for t in reversed(history) if t.role == "user"), "")
            return f"{last_user}\n{question}".strip()
        try:
            rewritten = await self._model.complete(
                messages=self._prompts.condense_messages(history, question)
            )
        except Exception as exc:
            log.warning("could not condense the follow-up, using it as is: %s", exc)
            return question
        rewritten = rewritten.strip().splitlines()[0].strip() if rewritten.strip() else ""
        return rewritten[: self._max_chars] or question
