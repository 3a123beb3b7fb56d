"""The real conversation (rag.conversation) over a scripted answerer and an in-memory session store.

Channel tests use it in place of the full core: commands, turn order, resets and timeouts are the real
ones, only the wiki answer is scripted (it shows the history it was given, so a follow-up is visible).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from rag.conversation import Conversation, Limits
from rag.ports import Participants, Progress, SessionGate, SessionStore
from rag.types import IncomingMessage, Place, Reply, Scope, Turn

Respond = Callable[[str, list[str]], Reply]


class MemorySessions:
    """rag.ports.SessionStore in a dict; resets can be made slow (they run in a thread, as the real ones)."""

    def __init__(self, *, reset_delay_s: float = 0.0) -> None:
        self.reset_delay_s = reset_delay_s
        self.turns: dict[str, list[Turn]] = {}

    def history(self, session_id: str) -> list[Turn]:
        return list(self.turns.get(session_id, []))

    def append(self, session_id: str, turns: Sequence[Turn]) -> None:
        self.turns.setdefault(session_id, []).extend(turns)

    def reset(self, session_id: str) -> None:
        time.sleep(self.reset_delay_s)
        self.turns.pop(session_id, None)

    def reset_prefix(self, prefix: str) -> int:
        time.sleep(self.reset_delay_s)
        keys = [key for key in self.turns if key.startswith(prefix)]
        for key in keys:
            del self.turns[key]
        return len(keys)

    def purge_expired(self) -> int:
        return 0

    def close(self) -> None:
        pass


class ScriptedAnswerer:
    """rag.ports.Answerer: answers with `respond(question, earlier questions)`, after a delay or failing."""

    def __init__(self, respond: Respond, *, delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.respond = respond
        self.delay_s = delay_s
        self.error = error
        self.questions: list[str] = []

    async def answer(
        self, question: str, history: Sequence[Turn], *, progress: Progress | None = None
    ) -> Reply:
        self.questions.append(question)
        earlier = [turn.content for turn in history if turn.role == "user"]
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return self.respond(question, earlier)


class RecordingConversation(Conversation):
    """The real Conversation, remembering every message an adapter handed it."""

    def __init__(
        self,
        respond: Respond,
        *,
        delay_s: float = 0.0,
        error: Exception | None = None,
        reset_delay_s: float = 0.0,
        sessions: SessionStore | None = None,
        participants: Participants | None = None,
        gate: SessionGate | None = None,
        **limits: Any,
    ) -> None:
        """`sessions`, `participants` and `gate` replace the in-process ones: what replicas share."""
        self.answerer = ScriptedAnswerer(respond, delay_s=delay_s, error=error)
        self.sessions = MemorySessions(reset_delay_s=reset_delay_s)
        super().__init__(
            answerer=self.answerer,
            sessions=sessions or self.sessions,
            limits=Limits(**limits),
            participants=participants,
            gate=gate,
        )
        self.asked: list[IncomingMessage] = []

    async def ask(self, message: IncomingMessage, *, progress: Progress | None = None) -> Reply:
        self.asked.append(message)
        return await super().ask(message, progress=progress)

    @property
    def delay_s(self) -> float:
        return self.answerer.delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self.answerer.delay_s = value

    @property
    def error(self) -> Exception | None:
        return self.answerer.error

    @error.setter
    def error(self, value: Exception | None) -> None:
        self.answerer.error = value


# Places and messages as a channel adapter builds them, for tests of the conversation's rules.
CHANNEL = Place("slack:T1:C1:")
DM = Place("slack:T1:D1:", private=True)


def echo(question: str, earlier: list[str]) -> Reply:
    """A scripted answer that shows the history it was given."""
    return Reply(text=f"{question} (after: {' | '.join(earlier) or 'nothing'})")


def message_in(place: Place, root: str, text: str, user: str = "U1") -> IncomingMessage:
    return IncomingMessage(
        session_key=f"{place.key}{root}", text=text, user_id=user, place=place, threaded=True
    )


def place_reset(place: Place, user: str = "U1") -> IncomingMessage:
    return IncomingMessage(session_key="", text="reset", user_id=user, place=place, scope=Scope.PLACE)
