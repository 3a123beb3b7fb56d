"""The real conversation over a scripted answer that shows each session's earlier questions."""

from __future__ import annotations

from typing import Any

from rag.types import Reply, Source
from tests.fakes.conversation import RecordingConversation

PAGE = Source(page_id="4242", title="Deploying to production", url="https://wiki.example.com/pages/4242")


class FakeAssistant(RecordingConversation):
    def __init__(self, *, answer: str | None = None, **options: Any) -> None:
        def respond(question: str, earlier: list[str]) -> Reply:
            text = answer or (
                f"**Answer** to: {question}\n\n"
                f"- earlier questions: {' | '.join(earlier) if earlier else 'none'}\n\n"
                "See the [deploy guide](https://wiki.example.com/pages/4242) [1]."
            )
            return Reply(text=text, sources=(PAGE,))

        super().__init__(respond, **options)
