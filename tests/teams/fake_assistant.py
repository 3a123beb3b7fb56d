"""A stand-in for the core: keeps a history per session key and cites one page; can be made slow."""

from __future__ import annotations

import asyncio

from rag.types import IncomingMessage, Reply, Source

VPN_PAGE = Source(page_id="4242", title="VPN access", url="https://wiki.example.com/pages/4242")


class FakeAssistant:
    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.fail_with: Exception | None = None
        self.histories: dict[str, list[str]] = {}
        self.received: list[IncomingMessage] = []
        self.resets: list[str] = []

    async def ask(self, message: IncomingMessage) -> Reply:
        self.received.append(message)
        await asyncio.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        history = self.histories.setdefault(message.session_key, [])
        earlier = f"Earlier you asked: {history[-1]}" if history else "No earlier questions"
        history.append(message.text)
        return Reply(text=f"About '{message.text}': see the VPN page [1]. {earlier}.", sources=(VPN_PAGE,))

    async def reset(self, session_key: str) -> None:
        self.resets.append(session_key)
        self.histories.pop(session_key, None)
