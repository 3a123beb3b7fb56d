"""A loopback Slack: the Web API methods the bot calls, and a Socket Mode WebSocket endpoint.

It behaves like Slack where the bot could get it wrong: it checks the token, keeps the messages posted (and
edits them on chat.update), refuses blocks over Slack's limits, and can answer 429 with Retry-After or fail a
method on demand. Tests read what a person would see: the messages in a thread, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

T = TypeVar("T")

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
TEAM_ID = "T0FAKE01"
APP_ID = "A0FAKE"
BOT_USER_ID = "U0WIKIBOT"
BOT_ID = "B0WIKIBOT"


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    status: int
    ok: bool


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    edits: int = 0

    @property
    def everything(self) -> str:
        """Text and blocks as one string: what a reader of the message could see or click."""
        return self.text + "\n" + json.dumps(self.blocks)


@dataclass
class _Failure:
    status: int
    error: str | None  # None: no failure, only the delay
    retry_after: int | None
    delay_s: float


@dataclass
class SocketAck:
    envelope_id: str
    payload: dict[str, Any] | None


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    acks: dict[str, SocketAck] = field(default_factory=dict)


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.messages: list[Posted] = []
        self.socket_connections = 0
        self.socket_acks: dict[str, SocketAck] = {}
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._ts = itertools.count(1)
        self._envelopes = itertools.count(1)
        self._socket: web.WebSocketResponse | None = None
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._websocket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # ---- test controls

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str = "internal_error",
        retry_after: int | None = None,
        delay_s: float = 0.0,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail: a 429 with Retry-After, or ok=false with `error`."""
        for _ in range(times):
            self._failures[method].append(_Failure(status, error, retry_after, delay_s))

    def slow_next(self, method: str, delay_s: float) -> None:
        """The next call of `method` succeeds, but only after `delay_s`."""
        self._failures[method].append(_Failure(200, None, None, delay_s))

    def calls_of(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def in_thread(self, channel: str, thread_ts: str | None) -> list[Posted]:
        """The bot's messages in one thread (thread_ts None: the channel's top level), oldest first."""
        return [m for m in self.messages if m.channel == channel and m.thread_ts == thread_ts]

    async def wait_for(self, condition: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Waits until `condition()` is truthy (re-checked after each call the fake serves) and returns it."""
        async with asyncio.timeout(timeout):
            while True:
                value = condition()
                if value:
                    return value
                self._changed.clear()
                try:
                    async with asyncio.timeout(0.05):
                        await self._changed.wait()
                except TimeoutError:
                    pass

    async def send_envelope(self, kind: str, payload: dict[str, Any]) -> str:
        """Pushes an events_api / slash_commands envelope through the Socket Mode connection."""
        assert self._socket is not None, "no Socket Mode connection"
        envelope_id = f"env-{next(self._envelopes)}"
        await self._socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "accept_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": payload,
            }
        )
        return envelope_id

    # ---- the Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or str(
            params.pop("token", "")
        )
        status, body, headers = await self._answer(method, token, params)
        self.calls.append(ApiCall(method, params, status, bool(body.get("ok"))))
        self._changed.set()
        return web.json_response(body, status=status, headers=headers)

    async def _answer(
        self, method: str, token: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token != expected:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if self._failures[method]:
            failure = self._failures[method].popleft()
            await asyncio.sleep(failure.delay_s)
            if failure.error is not None:
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                error = "ratelimited" if failure.status == 429 else failure.error
                return failure.status, {"ok": False, "error": error}, headers
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "apps.connections.open": self._connections_open,
        }.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(params), {}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": "Fake Team",
            "user": "wikibot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = _check_message(params)
        if problem:
            return {"ok": False, "error": problem}
        channel = str(params["channel"])
        ts = f"{1_800_000_000 + next(self._ts)}.000100"
        thread_ts = params.get("thread_ts") or None
        message = Posted(channel, ts, str(params.get("text", "")), _blocks(params), thread_ts)
        self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": message.text, "ts": ts}}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = _check_message(params)
        if problem:
            return {"ok": False, "error": problem}
        for message in self.messages:
            if message.channel == params.get("channel") and message.ts == params.get("ts"):
                message.text = str(params.get("text", ""))
                message.blocks = _blocks(params)
                message.edits += 1
                return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}
        return {"ok": False, "error": "message_not_found"}

    def _connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket=fake-ticket"}

    # ---- Socket Mode

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._socket = ws
        self.socket_connections += 1
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKE"}})
        self._changed.set()
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                ack = json.loads(frame.data)
                envelope_id = str(ack.get("envelope_id", ""))
                self.socket_acks[envelope_id] = SocketAck(envelope_id, ack.get("payload"))
                self._changed.set()
        if self._socket is ws:
            self._socket = None
        return ws


def _blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = params.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return list(blocks)


def _check_message(params: dict[str, Any]) -> str | None:
    """Slack's own limits: what it answers when a message breaks them."""
    if not params.get("channel"):
        return "channel_not_found"
    text = str(params.get("text", ""))
    blocks = _blocks(params)
    if not text and not blocks:
        return "no_text"
    if len(text) > 40_000:
        return "msg_too_long"
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if block.get("type") == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            return "invalid_blocks"
        if block.get("type") == "context" and len(block.get("elements", [])) > 10:
            return "invalid_blocks"
    return None
