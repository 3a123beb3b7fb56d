"""A loopback Bot Framework connector: the `serviceUrl` the bot posts its replies to.

It records every activity the bot sends (with the conversation, the replied-to activity and the
Authorization header) and answers like the real service, with a resource id.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Posted:
    conversation_id: str
    reply_to_id: str | None
    activity: dict[str, Any]
    authorization: str

    @property
    def type(self) -> str:
        return str(self.activity.get("type", ""))

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")


class ConnectorFake:
    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self.fail_status: int | None = None
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
        posted = Posted(
            conversation_id=request.match_info["conversation_id"],
            reply_to_id=request.match_info.get("activity_id"),
            activity=await request.json(),
            authorization=request.headers.get("Authorization", ""),
        )
        async with self._changed:
            self.posted.append(posted)
            self._changed.notify_all()
        return web.json_response({"id": f"reply-{next(self._ids)}"}, status=201)

    def messages(self) -> list[Posted]:
        return [p for p in self.posted if p.type == "message"]

    def typing(self) -> list[Posted]:
        return [p for p in self.posted if p.type == "typing"]

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
