"""One answer as the user sees it in Slack, from the loading status to the final message (rag.ports.Progress).

In a thread (a channel mention's, a reply in one, a thread of a DM) the thread shows a loading status
(assistant.threads.setStatus) as soon as the core starts, and the answer is streamed into a thread reply as the
model writes it (chat.startStream / appendStream), closed with the Sources and the feedback buttons
(chat.stopStream). Where that cannot be, it is posted then updated: at the top level of a DM (a stream is
always a thread reply, and the top level is one conversation of its own: its answers stay there), where the
workspace refuses streaming, or where the status is refused (a "working" message then stands in for it, and the
answer grows in it). The draft shown is then the first message, updated as the answer grows, and replaced by
the final answer.

The core's draft() only records the text: one task sends it at its own pace, one Slack call at a time, so a
slow or rate-limited Slack never holds the answer up and the pieces arrive in order. What was streamed cannot be
taken back: when the final reply does not continue it (the model gave up, failed mid-way, or the answer outgrew
a stream's 12,000 characters), the streamed message is replaced (chat.update) by the reply as posted messages
are rendered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import texts
from adapters.slack.delivery import SLACK_ERRORS, Poster, describe
from adapters.slack.markdown import streamed
from adapters.slack.render import SlackMessage, closing_blocks, mrkdwn_text, render_notice, render_reply
from adapters.slack.sessions import Conversation
from rag.types import Reply, ReplyKind

log = logging.getLogger(__name__)

_WRITING = {"type": "context", "elements": [mrkdwn_text(texts.WRITING)]}


@dataclass(frozen=True, kw_only=True)
class Pace:
    """How often an answer in progress is sent to Slack, and how much of it one stream holds."""

    # Between two appends to a stream: the first text goes at once, the rest in a few pieces a second.
    stream_interval_s: float = 0.5
    # Between two updates of a posted draft (chat.update has a lower rate limit than streaming).
    edit_interval_s: float = 2.0
    # chat.startStream / appendStream take at most 12,000 characters of markdown; this much is streamed in one
    # message, with room to spare (Slack may count characters otherwise than Python).
    stream_chars: int = 11_000


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """Whom a stream in a channel is for (Slack requires it outside DMs): the asker, and their workspace."""

    user_id: str
    team_id: str


class StreamRefusals:
    """Channels where Slack lately refused to start a stream: their answers are posted then updated at once,
    rather than after one failed call each. Slack refuses by workspace setting or channel type, which change
    rarely; a refusal is remembered for a while, per channel, in this process."""

    def __init__(
        self, *, ttl_s: float = 600.0, max_size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max_size = max_size
        self._clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()

    def add(self, channel: str) -> None:
        self._until[channel] = self._clock() + self._ttl_s
        self._until.move_to_end(channel)
        while len(self._until) > self._max_size:
            self._until.popitem(last=False)

    def refused(self, channel: str) -> bool:
        until = self._until.get(channel)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[channel]
            return False
        return True


class SlackProgress:
    def __init__(
        self,
        client: AsyncWebClient,
        conversation: Conversation,
        *,
        recipient: Recipient,
        pace: Pace,
        refusals: StreamRefusals | None = None,
    ) -> None:
        self._client = client
        self._poster = Poster(client, conversation)
        self._pace = pace
        self._placeholder: str | None = None
        # Streams are thread replies: at the top level of a DM the draft is posted and updated.
        self._stream = (
            _Stream(client, conversation, recipient, pace, refusals or StreamRefusals())
            if conversation.thread_ts
            else None
        )
        self._edits: _Edits | None = None
        self._drafted = ""
        self._pump = _Pump(self._show, self._interval)

    # ---- rag.ports.Progress

    async def working(self) -> None:
        if self._stream is not None and await self._set_status():
            return
        # The placeholder is the message the answer then grows in: a stream would be a second one under it.
        self._stream = None
        self._placeholder = await self._poster.post(render_notice(texts.WORKING))

    async def draft(self, text: str) -> None:
        self._drafted = text
        self._pump.offer(text)

    # ---- the end

    async def finish(self, reply: Reply) -> None:
        """Shows the final reply: closes the stream when the reply continues it, else replaces what was shown."""
        await self._pump.close()
        stream = self._stream
        if (
            stream is not None
            and self._drafted
            and reply.kind is ReplyKind.ANSWER
            and reply.text.startswith(self._drafted)
            and await stream.finish(reply)
        ):
            return
        if stream is not None:
            await stream.abandon()
        messages = render_reply(reply) if reply.kind is ReplyKind.ANSWER else [render_notice(reply.text)]
        shown = stream.ts if stream is not None and stream.ts else None
        shown = shown or (self._edits.ts if self._edits is not None else None) or self._placeholder
        await self._poster.deliver(messages, shown)

    def cancel(self) -> None:
        """Stops sending drafts at once (the answer was cancelled: a shutdown)."""
        self._pump.cancel()

    # ---- drafts, at the pump's pace

    async def _show(self, draft: str) -> bool:
        stream = self._stream
        if stream is not None and not stream.refused:
            called = await stream.show(draft)
            if not stream.refused:
                return called
        # No stream here, or Slack refused one before it began: the draft is posted, then updated.
        if self._edits is None:
            self._edits = _Edits(self._poster, self._placeholder)
        await self._edits.show(draft)
        return True

    def _interval(self) -> float:
        if self._stream is not None and not self._stream.refused:
            return self._pace.stream_interval_s
        return self._pace.edit_interval_s

    async def _set_status(self) -> bool:
        conversation = self._poster.conversation
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=conversation.channel_id,
                thread_ts=conversation.thread_ts or "",
                status=texts.STATUS,
                loading_messages=list(texts.LOADING_MESSAGES),
            )
        except SLACK_ERRORS as error:
            log.warning(
                "Slack: assistant.threads.setStatus in %s failed, posting a placeholder: %s",
                conversation.channel_id,
                describe(error),
            )
            return False
        return True


class _Pump:
    """Sends the newest draft at its own pace, one call at a time; offer() only records it. `send` says whether
    it called Slack: a draft with nothing new to show yet costs no wait."""

    def __init__(self, send: Callable[[str], Awaitable[bool]], interval: Callable[[], float]) -> None:
        self._send = send
        self._interval = interval
        self._latest = ""
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def offer(self, text: str) -> None:
        self._latest = text
        self._wake.set()
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="slack-draft")

    async def close(self) -> None:
        """Sends nothing more; returns once a call in flight has ended (what follows comes after it)."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def cancel(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        sent = ""
        while not self._stop.is_set():
            await self._wake.wait()
            self._wake.clear()
            if self._stop.is_set() or self._latest == sent:
                continue
            sent = self._latest
            try:
                called = await self._send(sent)
            except Exception:
                # A bug must not end the answer: the final reply is still delivered by finish().
                log.exception("Slack: showing a draft failed")
                return
            if not called:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval())


class _Stream:
    """A thread reply streamed through chat.startStream / appendStream / stopStream."""

    def __init__(
        self,
        client: AsyncWebClient,
        conversation: Conversation,
        recipient: Recipient,
        pace: Pace,
        refusals: StreamRefusals,
    ) -> None:
        self._client = client
        self._conversation = conversation
        self._recipient = recipient
        self._pace = pace
        self._refusals = refusals
        self.ts: str | None = None
        self._sent = ""  # the markdown Slack holds
        # Slack refused to start one (a workspace without streaming), now or lately in this channel: posted
        # drafts stand in for it.
        self.refused = refusals.refused(conversation.channel_id)
        # Slack refused a piece of a stream begun (it ended it, a limit): nothing more goes into it.
        self._broken = False
        self._stopped = False  # chat.stopStream was called, whatever Slack answered

    async def show(self, draft: str) -> bool:
        """Sends what of the draft is settled and new; whether Slack was called."""
        rendered = streamed(draft)
        # Over the stream's limit the answer is held, and replaced at the end; a rendering that does not
        # continue what was sent (a construct opened meanwhile) waits for the text to settle further.
        if self._broken or len(rendered) > self._pace.stream_chars or not rendered.startswith(self._sent):
            return False
        return await self._send(rendered[len(self._sent) :])

    async def finish(self, reply: Reply) -> bool:
        """Ends the stream with the rest of the reply, its Sources and buttons; False when it cannot be so."""
        final = streamed(reply.text, final=True)
        if self.refused or self._broken or len(final) > self._pace.stream_chars:
            return False
        if not final.startswith(self._sent):
            log.warning("Slack: the final answer does not continue its stream; replacing it")
            return False
        rest = final[len(self._sent) :]
        if self.ts is None:
            # Drafts came, but none was shown yet: the whole answer starts the stream.
            await self._send(rest)
            rest = ""
            if self.ts is None:
                return False
        return await self._stop(self.ts, markdown_text=rest or None, blocks=closing_blocks(reply) or None)

    async def abandon(self) -> None:
        """Ends a stream begun whose text is about to be replaced (one Slack ended answers so, logged)."""
        if self.ts is not None and not self._stopped:
            await self._stop(self.ts)

    async def _stop(self, ts: str, **closing: Any) -> bool:
        self._stopped = True
        try:
            await self._client.chat_stopStream(channel=self._conversation.channel_id, ts=ts, **closing)
        except SLACK_ERRORS as error:
            self._failed("chat.stopStream", error)
            return False
        return True

    async def _send(self, text: str) -> bool:
        """Starts the stream with text, or appends it; whether Slack was called."""
        if not text:
            return False
        channel = self._conversation.channel_id
        method = "chat.appendStream" if self.ts else "chat.startStream"
        try:
            if self.ts is not None:
                await self._client.chat_appendStream(channel=channel, ts=self.ts, markdown_text=text)
            else:
                response = await self._client.chat_startStream(
                    channel=channel,
                    thread_ts=self._conversation.thread_ts or "",
                    recipient_user_id=self._recipient.user_id,
                    recipient_team_id=self._recipient.team_id,
                    markdown_text=text,
                )
                ts = response.get("ts")
                self.ts = ts if isinstance(ts, str) and ts else None
        except SLACK_ERRORS as error:
            self.refused = self.ts is None
            if self.refused and isinstance(error, SlackApiError):  # Slack said no, not the network
                self._refusals.add(channel)
            self._failed(method, error)
            return True
        if self.ts is None:  # started, but with no message to append to or replace
            self.refused = True
            self._failed(method, ValueError("no ts in the answer"))
            return True
        self._sent += text
        return True

    def _failed(self, method: str, error: BaseException) -> None:
        self._broken = True
        then = "posting the answer instead" if self.refused else "replacing it at the end"
        log.warning(
            "Slack: %s in %s failed, %s: %s", method, self._conversation.channel_id, then, describe(error)
        )


class _Edits:
    """A draft posted as a message, then updated as it grows (where no stream can carry it)."""

    def __init__(self, poster: Poster, ts: str | None) -> None:
        self._poster = poster
        self.ts = ts

    async def show(self, draft: str) -> None:
        # The first message's worth of the draft (the rest of a long answer is posted with the final reply),
        # marked as still being written: the final reply replaces the mark with its Sources.
        first = render_reply(Reply(text=draft))[0]
        message = SlackMessage(text=first.text, blocks=(*first.blocks, _WRITING))
        if self.ts is None:
            self.ts = await self._poster.post(message)
        else:
            await self._poster.update(self.ts, message)
