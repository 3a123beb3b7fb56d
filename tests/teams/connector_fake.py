"""A loopback Bot Framework connector: the `serviceUrl` the bot posts its replies to.

It records every activity the bot sends (with the conversation, the replied-to activity, the Authorization
header, its entities and channelData) and answers like the real service: 201 with a new id for a message or
the first update of a stream (that id is the stream's), 202 with an empty body for a stream's later updates
and its final message. It refuses what Teams refuses, with Teams' error codes: a stream outside a personal
chat, past its time limit or after its end (403 ContentStreamNotAllowed), a malformed stream activity (400),
more than one root message entity or more than 20 citations (400). A later update whose sequence is not
above the last one is dropped, as Teams does (202 ContentStreamSequenceOrderPreConditionFailed).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MESSAGE_ENTITY = "https://schema.org/Message"
MAX_CITATIONS = 20


@dataclass(frozen=True)
class Posted:
    conversation_id: str
    reply_to_id: str | None
    activity: dict[str, Any]
    authorization: str
    # The id the connector answered with: "" for a stream's later updates and its final message.
    id: str = ""
    at: float = 0.0  # time.monotonic() when it arrived

    @property
    def type(self) -> str:
        return str(self.activity.get("type", ""))

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.activity.get("entities") or [])

    @property
    def channel_data(self) -> dict[str, Any]:
        return dict(self.activity.get("channelData") or {})

    @property
    def stream_info(self) -> dict[str, Any] | None:
        return next((e for e in self.entities if e.get("type") == "streaminfo"), None)

    @property
    def message_entity(self) -> dict[str, Any] | None:
        return next((e for e in self.entities if e.get("type") == MESSAGE_ENTITY), None)


@dataclass(frozen=True)
class Refused:
    activity: dict[str, Any]
    status: int
    code: str
    message: str


@dataclass
class _Stream:
    started_at: float
    sequence: int
    ended: bool = False
    updates: list[str] = field(default_factory=list)


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ConnectorFake:
    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self.refused: list[Refused] = []
        self.fail_status: int | None = None
        # Teams' rules for streams: allowed at all (some tenants and clients refuse), and for how long.
        self.streaming_allowed = True
        self.stream_limit_s = 120.0
        self.streams: dict[str, _Stream] = {}
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> ConnectorFake:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation_id}/activities/{activity_id}", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        if self.fail_status is not None:
            return web.json_response({"error": {"code": "ServiceError"}}, status=self.fail_status)
        activity = await request.json()
        try:
            status, answer_id = self._accept(activity)
        except _Refusal as refusal:
            async with self._changed:
                self.refused.append(Refused(activity, refusal.status, refusal.code, refusal.message))
                self._changed.notify_all()
            error = {"error": {"code": refusal.code, "message": refusal.message}}
            return web.json_response(error, status=refusal.status)
        posted = Posted(
            conversation_id=request.match_info["conversation_id"],
            reply_to_id=request.match_info.get("activity_id"),
            activity=activity,
            authorization=request.headers.get("Authorization", ""),
            id=answer_id,
            at=time.monotonic(),
        )
        async with self._changed:
            self.posted.append(posted)
            self._changed.notify_all()
        return web.json_response({"id": answer_id} if answer_id else {}, status=status)

    def _accept(self, activity: dict[str, Any]) -> tuple[int, str]:
        """(status, new id) for an activity Teams would take; raises _Refusal as Teams would refuse it."""
        entities = [e for e in activity.get("entities") or [] if isinstance(e, dict)]
        roots = [e for e in entities if e.get("type") == MESSAGE_ENTITY]
        if len(roots) > 1:
            raise _Refusal(400, "BadRequest", "Multiple root message entities found under entities array")
        if roots and len(roots[0].get("citation") or []) > MAX_CITATIONS:
            raise _Refusal(400, "BadRequest", "Bot message with more than 20 citations")
        info = next((e for e in entities if e.get("type") == "streaminfo"), None)
        if info is None:
            return 201, f"reply-{next(self._ids)}"
        return self._accept_stream(activity, info)

    def _accept_stream(self, activity: dict[str, Any], info: dict[str, Any]) -> tuple[int, str]:
        conversation = activity.get("conversation") or {}
        if not self.streaming_allowed or conversation.get("conversationType") != "personal":
            raise _Refusal(403, "ContentStreamNotAllowed", "Content stream is not allowed")
        kind = info.get("streamType", "streaming")
        sequence = info.get("streamSequence")
        stream_id = info.get("streamId")
        final = kind == "final"
        if final != (activity.get("type") == "message") or kind not in ("informative", "streaming", "final"):
            raise _Refusal(400, "BadRequest", f"a {activity.get('type')} activity cannot be a {kind} update")
        if final and sequence is not None:
            raise _Refusal(400, "BadRequest", "the final streaming message must not have a streamSequence")
        if not final and (not isinstance(sequence, int) or not activity.get("text")):
            raise _Refusal(400, "BadRequest", "Start streaming activities should include text and a sequence")
        now = time.monotonic()
        if not stream_id:
            if final or sequence != 1:
                raise _Refusal(400, "BadRequest", "a stream starts with streamSequence 1")
            new_id = f"stream-{next(self._ids)}"
            self.streams[new_id] = _Stream(started_at=now, sequence=1, updates=[activity["text"]])
            return 201, new_id
        stream = self.streams.get(str(stream_id))
        if stream is None:
            raise _Refusal(400, "BadRequest", "unknown streamId")
        if stream.ended:
            raise _Refusal(
                403,
                "ContentStreamNotAllowed",
                "Content stream is not allowed on an already completed streamed message",
            )
        if now - stream.started_at > self.stream_limit_s:
            stream.ended = True
            raise _Refusal(
                403, "ContentStreamNotAllowed", "Content stream finished due to exceeded streaming time."
            )
        if final:
            stream.ended = True
            return 202, ""
        assert isinstance(sequence, int)
        if sequence <= stream.sequence:
            raise _Refusal(
                202,
                "ContentStreamSequenceOrderPreConditionFailed",
                "PreCondition failed exception when processing streaming activity.",
            )
        stream.sequence = sequence
        stream.updates.append(str(activity["text"]))
        return 202, ""

    def messages(self) -> list[Posted]:
        return [p for p in self.posted if p.type == "message"]

    def typing(self) -> list[Posted]:
        return [p for p in self.posted if p.type == "typing"]

    def stream_updates(self) -> list[Posted]:
        return [p for p in self.typing() if p.stream_info is not None]

    async def wait_for_messages(self, count: int, *, timeout: float = 10.0) -> list[Posted]:
        return await self.wait_until(
            lambda: len(self.messages()) >= count, timeout=timeout, then=self.messages
        )

    async def wait_until(
        self, condition: Callable[[], bool], *, timeout: float, then: Callable[[], list[Posted]]
    ) -> list[Posted]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)
        return then()
