"""A stand-in for the core: remembers each session's questions, so a follow-up visibly carries the history."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from rag.types import IncomingMessage, Reply, Source

PAGE = Source(page_id="4242", title="Deploying to production", url="https://wiki.example.com/pages/4242")


class FakeAssistant:
    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        error: Exception | None = None,
        answer: str | None = None,
        reset_delay_s: float = 0.0,
    ) -> None:
        self.delay_s = delay_s
        self.reset_delay_s = reset_delay_s
        self.error = error
        self.answer = answer
        self.asked: list[IncomingMessage] = []
        self.history: dict[str, list[str]] = defaultdict(list)

    async def ask(self, message: IncomingMessage) -> Reply:
        self.asked.append(message)
        # Like the core: read the history, think, then record the turn.
        earlier = list(self.history[message.session_key])
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        self.history[message.session_key].append(message.text)
        text = self.answer or (
            f"**Answer** to: {message.text}\n\n"
            f"- earlier questions: {' | '.join(earlier) if earlier else 'none'}\n\n"
            "See the [deploy guide](https://wiki.example.com/pages/4242) [1]."
        )
        return Reply(text=text, sources=(PAGE,))

    async def reset(self, session_key: str) -> None:
        self.history.pop(session_key, None)

    async def reset_prefix(self, prefix: str) -> int:
        await asyncio.sleep(self.reset_delay_s)
        keys = [key for key in self.history if key.startswith(prefix)]
        for key in keys:
            del self.history[key]
        return len(keys)
