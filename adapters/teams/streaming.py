"""An answer streamed into a Teams personal chat, as the model writes it (Teams streams in 1:1 chats only).

Teams' protocol: `typing` activities carrying a `streaminfo` entity, numbered from 1 (`streamSequence`), each
with the whole text so far; the first one's id (the connector's answer) is the `streamId` every later one
names; a final `message` with `streamType: "final"` ends the stream and becomes the message, under the
stream's id. Teams throttles updates sent faster than about one every 1.5 s and refuses a stream after two
minutes (403 `ContentStreamNotAllowed`, as it does when streaming is not allowed at all).

So drafts are only remembered as they come (the core's `draft` must return at once) and one pump sends the
latest of them at that pace, one request at a time. Near the limit the stream is ended with what it shows
(or a short notice) and the answer goes as a message of its own; a stream Teams refuses is given up, and the
answer goes the same way. A failed update is not retried: the final message carries the whole answer anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from botbuilder.schema import Activity, ErrorResponseException

from adapters.teams.auth import scrub
from adapters.teams.markdown import to_teams_markdown
from adapters.teams.replies import STREAM_WORKING_TEXT, ending_stream, stream_cut_short, stream_update
from rag.markdown import INLINE_CODE, closes_fence, fence_opening

_LOG = logging.getLogger(__name__)

# Sends one activity to the chat; the id the connector answered with, if any. Raises what the SDK raises.
Send = Callable[[Activity], Awaitable[str | None]]
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


def refused_stream(exc: BaseException) -> bool:
    """Teams will not (or no longer) show this stream: not allowed here, over its time, already ended."""
    return isinstance(exc, ErrorResponseException) and getattr(exc.response, "status_code", None) == 403


class TeamsStream:
    """rag.ports.Progress for a personal chat, and the delivery of the answer's final message."""

    def __init__(
        self,
        *,
        send: Send,
        spawn: Spawn,
        interval_s: float,
        limit_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._spawn = spawn
        self._interval_s = interval_s
        self._limit_s = limit_s
        self._clock = clock
        self._draft = ""  # the latest draft, in the core's markdown
        self._shown = ""  # the text of the last update Teams accepted, in Teams markdown
        self._working = False  # working() came: an informative update until the model writes
        self._sequence = 0
        self._stream_id = ""
        self._started_at = 0.0
        self._last_sent_at: float | None = None
        self._updating = True  # False once an update failed or the answer is here: no more updates
        self._open = True  # False once Teams refused the stream or we ended it: the answer goes as a message
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Task[None] | None = None

    @property
    def streaming(self) -> bool:
        """Teams shows this stream now: a separate typing indicator would only get in its way."""
        return bool(self._stream_id) and self._open

    async def working(self) -> None:
        self._working = True
        self._kick()

    async def draft(self, text: str) -> None:
        self._draft = text
        self._kick()

    async def finish(self, final: Activity) -> str | None:
        """Sends the answer's message, ending the stream with it when one is open; the id of the message
        that shows it (a streamed message keeps the stream's id). Raises when the message cannot be sent."""
        self._updating = False
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._in_flight is not None:  # an update under way: its id may be the stream's
            await asyncio.gather(self._in_flight, return_exceptions=True)
        if self.streaming:
            await self._pace()
            try:
                await self._send(ending_stream(final, self._stream_id))
                return self._stream_id
            except ErrorResponseException as exc:
                if not refused_stream(exc):
                    raise
                _LOG.info(
                    "teams: the stream was refused at its end; the answer goes as a message: %s", _why(exc)
                )
        return await self._send(final)

    def _kick(self) -> None:
        if not self._updating:
            return
        self._wake.set()
        if self._pump is None:
            self._pump = self._spawn(self._run())

    async def _run(self) -> None:
        while self._updating:
            try:
                await asyncio.wait_for(self._wake.wait(), self._until_limit())
                self._wake.clear()
                await self._pace()
                if self._until_limit() == 0.0:
                    raise TimeoutError
            except TimeoutError:
                await self._shielded(self._cut_short())
                return
            update = self._next_update()
            if update is not None:
                await self._shielded(self._update(*update))

    async def _shielded(self, sending: Coroutine[Any, Any, None]) -> None:
        # Shielded: finish() cancels the pump, never a request half-way (its id may be the stream's).
        self._in_flight = self._spawn(self._paced(sending))
        await asyncio.shield(self._in_flight)

    async def _paced(self, sending: Coroutine[Any, Any, None]) -> None:
        try:
            await sending
        finally:
            # The pause runs from the connector's answer: Teams wants one request at a time, at its pace.
            self._last_sent_at = self._clock()

    def _next_update(self) -> tuple[str, bool] | None:
        """(text, informative) for the next update, or None when Teams already shows the latest."""
        text = to_teams_markdown(settled(self._draft))
        if text:
            return None if text == self._shown else (text, False)
        if self._working and not self._sequence:
            return STREAM_WORKING_TEXT, True
        return None

    async def _update(self, text: str, informative: bool) -> None:
        self._sequence += 1
        activity = stream_update(
            text, sequence=self._sequence, stream_id=self._stream_id, informative=informative
        )
        if not self._stream_id:
            self._started_at = self._clock()  # Teams counts its two minutes from the first update
        try:
            sent_id = await self._send(activity)
        except Exception as exc:  # a lost update must not cost the answer, which the final message carries
            self._updating = False
            if refused_stream(exc):
                self._open = False
                _LOG.info("teams: Teams refused the stream; the answer goes as one message: %s", _why(exc))
            else:
                _LOG.warning("teams: a stream update failed; no more updates for this answer: %s", _why(exc))
            return
        if not self._stream_id:
            if not sent_id:
                self._updating, self._open = False, False
                _LOG.warning("teams: the connector gave the stream no id; the answer goes as one message")
                return
            self._stream_id = sent_id
        if not informative:
            self._shown = text

    async def _cut_short(self) -> None:
        """Ends the stream before Teams' limit with what it shows; the answer will follow as a message."""
        self._updating, self._open = False, False
        await self._pace()
        try:
            await self._send(ending_stream(stream_cut_short(self._shown), self._stream_id))
        except Exception as exc:  # the answer still goes as a message of its own
            _LOG.warning("teams: could not end a stream at its time limit: %s", _why(exc))

    def _until_limit(self) -> float | None:
        if not self._stream_id:
            return None
        return max(0.0, self._started_at + self._limit_s - self._clock())

    async def _pace(self) -> None:
        if self._last_sent_at is not None:
            delay = self._last_sent_at + self._interval_s - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)


def settled(draft: str) -> str:
    """The draft without a code span still open at its end: escaped, its backtick would show as text until
    the span closes, and the streamed text would jump. Inside an open fence every backtick is code already."""
    fence: str | None = None
    paragraph = 0  # where the last paragraph outside a fence starts
    offset = 0
    for line in draft.split("\n"):
        end = offset + len(line) + 1
        if fence is None:
            fence = fence_opening(line)
            if fence is not None or not line.strip():
                paragraph = end
        elif closes_fence(line, fence):
            fence, paragraph = None, end
        offset = end
    if fence is not None:
        return draft
    tail = INLINE_CODE.sub(lambda m: " " * len(m.group(0)), draft[paragraph:])
    tick = tail.find("`")
    return draft if tick < 0 else draft[: paragraph + tick].rstrip()


def _why(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    detail = scrub(str(exc)) or type(exc).__name__
    return f"{status} {detail}" if status else detail
