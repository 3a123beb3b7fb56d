"""The answerer: one question and its session's history in, one cited reply out (rag.ports.Answerer).

The conversation around it (commands, sessions, turn order, timeouts) is rag.conversation's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from rag import texts
from rag.abstention import AbstentionPolicy
from rag.answering import (
    EXTRACTIVE_INTRO,
    MODEL_DOWN_INTRO,
    Prompts,
    cite,
    extractive,
    not_found,
)
from rag.drafting import Draft
from rag.followup import TopicLink, topic_link
from rag.language import LanguageDetector
from rag.llm import ChatModelError
from rag.ports import ChatModel, Progress, Telemetry
from rag.retrieval import HybridRetriever, Retrieved
from rag.telemetry import NoTelemetry
from rag.types import Hit, Reply, Turn

log = logging.getLogger(__name__)


class WikiAssistant:
    """Blocking work (embedding, Chroma, language detection) runs in threads, off the event loop."""

    def __init__(
        self,
        *,
        retriever: HybridRetriever,
        chat_model: ChatModel | None,
        prompts: Prompts,
        max_question_chars: int = 2000,
        abstention: AbstentionPolicy | None = None,
        language: LanguageDetector | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._retriever = retriever
        self._model = chat_model
        self._prompts = prompts
        self._max_chars = max_question_chars
        self._abstention = abstention or AbstentionPolicy()
        self._language = language or LanguageDetector()
        self._telemetry: Telemetry = telemetry or NoTelemetry()

    def warm(self) -> None:
        self._language.warm()
        if self._model is not None:
            self._model.warm()

    async def answer(
        self, question: str, history: Sequence[Turn], *, progress: Progress | None = None
    ) -> Reply:
        # An empty index is answered at once: no language model, no query embedding (a first model load
        # can take half a minute) for a question nothing could answer.
        if not await asyncio.to_thread(self._retriever.ready):
            return Reply.error(texts.EMPTY_INDEX)
        language = await asyncio.to_thread(self._language.detect, question)
        standalone, retrieved = await self._retrieve(history, question, language)
        spaces = tuple(dict.fromkeys(hit.chunk.space for hit in retrieved.hits))
        reply = await self._reply(history, standalone, retrieved, language, progress)
        return replace(reply, language=language, spaces=spaces)

    async def _reply(
        self,
        history: Sequence[Turn],
        standalone: str,
        retrieved: Retrieved,
        language: str,
        progress: Progress | None,
    ) -> Reply:
        if not retrieved.hits:
            return not_found(language)
        if self._model is None:
            if self._abstention.abstains(retrieved, language):
                return not_found(language)
            return extractive(retrieved.hits, language, intro=EXTRACTIVE_INTRO)
        messages = self._prompts.answer_messages(history, standalone, retrieved.hits, language)
        try:
            if progress is None:
                answer = await self._model.complete(messages=messages)
            else:
                answer = await _streamed(self._model, messages, retrieved.hits, progress)
        except ChatModelError as exc:
            log.warning("chat model failed, answering with passages: %s", exc)
            self._telemetry.model_error(stage="answer")
            self._telemetry.model_fallback()
            return extractive(retrieved.hits, language, intro=MODEL_DOWN_INTRO)
        return cite(answer, retrieved.hits) or not_found(language)

    async def retrieve(self, question: str, history: Sequence[Turn], *, k: int | None = None) -> Retrieved:
        """The passages the answer to this question would use, without answering."""
        question = question.strip()
        language = await asyncio.to_thread(self._language.detect, question)
        _, retrieved = await self._retrieve(history, question, language, k=k)
        return retrieved

    async def _retrieve(
        self, history: Sequence[Turn], question: str, language: str, *, k: int | None = None
    ) -> tuple[str, Retrieved]:
        """The question as retrieval should read it, and what it retrieves."""
        if not any(t.role == "user" for t in history):
            return question, await self._search(question, language, k=k)
        if self._model is not None:
            standalone = await self._condensed(self._model, history, question)
            return standalone, await self._search(standalone, language, k=k)
        # Without a model, a follow-up ("and on Linux?") borrows the previous question's topic; a
        # message that stands on its own starts a new one and is searched alone.
        last_user = _topic_of(history)
        link = topic_link(question)
        if link is TopicLink.CONTINUES:
            standalone = f"{last_user}\n{question}"
            return standalone, await self._search(standalone, language, k=k)
        context = last_user if link is TopicLink.MAYBE else ""
        return question, await self._search(question, language, k=k, context=context)

    async def _search(self, text: str, language: str, *, k: int | None, context: str = "") -> Retrieved:
        started = time.perf_counter()
        retrieved = await asyncio.to_thread(
            self._retriever.search, text, k=k, context=context, language=language
        )
        self._telemetry.retrieval(seconds=time.perf_counter() - started)
        return retrieved

    async def _condensed(self, model: ChatModel, history: Sequence[Turn], question: str) -> str:
        """A follow-up rewritten by the model, with its history, into a question that stands alone."""
        try:
            rewritten = await model.complete(messages=self._prompts.condense_messages(history, question))
        except ChatModelError as exc:
            log.warning("could not condense the follow-up, using it as is: %s", exc)
            self._telemetry.model_error(stage="condense")
            return question
        rewritten = rewritten.strip().splitlines()[0].strip() if rewritten.strip() else ""
        return rewritten[: self._max_chars] or question


async def _streamed(
    model: ChatModel, messages: list[dict[str, str]], hits: Sequence[Hit], progress: Progress
) -> str:
    """The model's whole answer, its readable prefix handed to progress.draft() as it grows."""
    draft = Draft(hits)
    async for piece in model.stream(messages=messages):
        shown = draft.add(piece)
        if shown is not None:
            await progress.draft(shown)
    return draft.text()


def _topic_of(history: Sequence[Turn]) -> str:
    """The user's last question, with the one before when it was itself a follow-up ("and on Linux?")."""
    questions = [t.content for t in history if t.role == "user"]
    topic = questions[-1]
    if len(questions) > 1 and topic_link(topic) is TopicLink.CONTINUES:
        topic = f"{questions[-2]}\n{topic}"
    return topic
