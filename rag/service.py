"""The assistant every channel talks to: one message in, one cited reply out, per session."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence

from rag.abstention import AbstentionPolicy
from rag.answering import (
    EXTRACTIVE_INTRO,
    MODEL_DOWN_INTRO,
    Prompts,
    cite,
    extractive,
    not_found,
)
from rag.commands import HELP_TEXT, Command, parse_command
from rag.followup import TopicLink, topic_link
from rag.language import LanguageDetector
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
        abstention: AbstentionPolicy | None = None,
        language: LanguageDetector | None = None,
    ) -> None:
        self._retriever = retriever
        self._sessions = sessions
        self._model = chat_model
        self._prompts = prompts
        self._max_chars = max_question_chars
        self._abstention = abstention or AbstentionPolicy()
        self._language = language or LanguageDetector()
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

    def warm(self) -> None:
        self._language.warm()

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
        """The question as retrieval should read it, and what it retrieves."""
        if not any(t.role == "user" for t in history):
            return question, await asyncio.to_thread(self._retriever.search, question, k=k)
        if self._model is not None:
            standalone = await self._condensed(self._model, history, question)
            return standalone, await asyncio.to_thread(self._retriever.search, standalone, k=k)
        # Without a model, a follow-up ("and on Linux?") borrows the previous question's topic; a
        # message that stands on its own starts a new one and is searched alone.
        last_user = _topic_of(history)
        link = topic_link(question)
        if link is TopicLink.CONTINUES:
            standalone = f"{last_user}\n{question}"
            return standalone, await asyncio.to_thread(self._retriever.search, standalone, k=k)
        context = last_user if link is TopicLink.MAYBE else ""
        return question, await asyncio.to_thread(self._retriever.search, question, k=k, context=context)

    async def _answer(self, session_key: str, question: str) -> Reply:
        language = await asyncio.to_thread(self._language.detect, question)
        history = await asyncio.to_thread(self._sessions.history, session_key)
        standalone, retrieved = await self._retrieve(history, question)
        if not retrieved.hits:
            ready = await asyncio.to_thread(self._retriever.ready)
            reply = not_found(language) if ready else Reply(text=EMPTY_INDEX, grounded=False, mode="error")
        elif self._model is None:
            if self._abstention.abstains(retrieved, language):
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

    async def _condensed(self, model: ChatModel, history: Sequence[Turn], question: str) -> str:
        """A follow-up rewritten by the model, with its history, into a question that stands alone."""
        try:
            rewritten = await model.complete(messages=self._prompts.condense_messages(history, question))
        except Exception as exc:
            log.warning("could not condense the follow-up, using it as is: %s", exc)
            return question
        rewritten = rewritten.strip().splitlines()[0].strip() if rewritten.strip() else ""
        return rewritten[: self._max_chars] or question


def _topic_of(history: Sequence[Turn]) -> str:
    """The user's last question, with the one before when it was itself a follow-up ("and on Linux?")."""
    questions = [t.content for t in history if t.role == "user"]
    topic = questions[-1]
    if len(questions) > 1 and topic_link(topic) is TopicLink.CONTINUES:
        topic = f"{questions[-2]}\n{topic}"
    return topic
