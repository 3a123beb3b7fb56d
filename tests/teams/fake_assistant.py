"""The real conversation over a scripted answer citing one page; it can be made slow or failing."""

from __future__ import annotations

from typing import Any

from rag.types import IncomingMessage, Reply, Source
from tests.fakes.conversation import RecordingConversation

VPN_PAGE = Source(page_id="4242", title="VPN access", url="https://wiki.example.com/pages/4242")


def _respond(question: str, earlier: list[str]) -> Reply:
    before = f"Earlier you asked: {earlier[-1]}" if earlier else "No earlier questions"
    return Reply(text=f"About '{question}': see the VPN page [1]. {before}.", sources=(VPN_PAGE,))


class FakeAssistant(RecordingConversation):
    def __init__(self, **options: Any) -> None:
        super().__init__(_respond, **options)

    @property
    def received(self) -> list[IncomingMessage]:
        return self.asked

    @property
    def fail_with(self) -> Exception | None:
        return self.error

    @fail_with.setter
    def fail_with(self, value: Exception | None) -> None:
        self.error = value
