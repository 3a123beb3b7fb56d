"""What the Slack adapter needs from the core: rag.ports.Assistant plus a reset of many sessions at once."""

from __future__ import annotations

from typing import Protocol

from rag.types import IncomingMessage, Reply


class SlackAssistant(Protocol):
    async def ask(self, message: IncomingMessage) -> Reply:
        """Answers one message in its session (IncomingMessage.session_key)."""
        ...

    async def reset(self, session_key: str) -> None:
        """Forgets one session."""
        ...

    async def reset_prefix(self, prefix: str) -> int:
        """Forgets every session whose key starts with `prefix`; returns how many there were."""
        ...
