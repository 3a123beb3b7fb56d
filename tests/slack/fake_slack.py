"""A loopback Slack: the Web API methods the bot calls, and a Socket Mode WebSocket endpoint.

It behaves like Slack where the bot could get it wrong: it checks the token (and, given the scopes the app was
granted, the scope of each method), keeps the messages posted (edits them on chat.update, assembles a streamed
one from chat.startStream / appendStream / stopStream), refuses blocks over Slack's limits, a stream in a
channel without its recipient, text past 12,000 characters, an append to a stream that ended; it shows a thread's
loading status until the bot's next message, the suggested prompts of an agent's Messages tab (set without a
thread: with one, Slack accepts and shows nothing) and ephemeral messages; it can refuse streaming as some
workspaces do, end streams as Slack does on its timeouts, answer 429 with Retry-After or fail a method on demand.
Tests read what a person would see: the messages in a thread, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
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


# What Slack requires of a bot token for each method it serves (None: nothing beyond a valid token).
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "apps.connections.open": None,  # an app-level token's connections:write, checked as the token
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "assistant.threads.setStatus": "chat:write",
    "assistant.threads.setSuggestedPrompts": "assistant:write",
}
# chat.startStream / appendStream / stopStream: markdown_text is limited to 12,000 characters; the fake holds a
# streamed message's whole text to it too (Slack's markdown is limited so per message).
MARKDOWN_LIMIT = 12_000


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    status: int
    ok: bool
    # When the fake answered it (time.perf_counter, the bench's clock).
    at: float = field(default_factory=time.perf_counter)


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    edits: int = 0
    # A streamed message: "streaming" until chat.stopStream (or Slack's own timeout), then "stopped".
    stream: str | None = None
    # The pieces of a streamed message's text, in the order they arrived.
    pieces: list[str] = field(default_factory=list)

    @property
    def everything(self) -> str:
        """Text and blocks as one string: what a reader of the message could see or click."""
        return self.text + "\n" + json.dumps(self.blocks)


@dataclass
class Status:
    """assistant.threads.setStatus: what the thread shows until the bot's next message in it."""

    status: str
    loading_messages: list[str]


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    thread_ts: str | None


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
        self.ephemerals: list[Ephemeral] = []
        # (channel, thread_ts) -> the loading status showing now; every status ever set, in order.
        self.statuses: dict[tuple[str, str], Status] = {}
        self.status_history: list[tuple[str, str, Status]] = []
        # An agent's Messages tab (a DM channel) -> (title, prompts) shown there.
        self.suggested_prompts: dict[str, tuple[str | None, list[dict[str, str]]]] = {}
        # None: every scope; else only these, and a method needing another answers missing_scope.
        self.granted_scopes: set[str] | None = None
        self._streaming_refused: str | None = None
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

    def refuse_streaming(self, error: str | None = "channel_type_not_supported") -> None:
        """Every chat.startStream fails with `error` from now on, as in a workspace that has streaming off;
        None allows it again."""
        self._streaming_refused = error

    def end_streams(self) -> None:
        """Slack ends streams on timeouts of its own: every stream in progress stops taking text."""
        for message in self.messages:
            if message.stream == "streaming":
                message.stream = "stopped"

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
        scope = METHOD_SCOPES.get(method)
        if scope and self.granted_scopes is not None and scope not in self.granted_scopes:
            provided = ",".join(sorted(self.granted_scopes))
            return 200, {"ok": False, "error": "missing_scope", "needed": scope, "provided": provided}, {}
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
            "chat.postEphemeral": self._post_ephemeral,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "assistant.threads.setStatus": self._set_status,
            "assistant.threads.setSuggestedPrompts": self._set_suggested_prompts,
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
        message = self._new_message(params, str(params.get("text", "")), _blocks(params))
        return {"ok": True, "channel": message.channel, "ts": message.ts, "message": {"text": message.text}}

    def _new_message(self, params: dict[str, Any], text: str, blocks: list[dict[str, Any]]) -> Posted:
        channel = str(params["channel"])
        ts = f"{1_800_000_000 + next(self._ts)}.000100"
        thread_ts = params.get("thread_ts") or None
        message = Posted(channel, ts, text, blocks, thread_ts)
        self.messages.append(message)
        # The bot's next message in a thread clears its loading status.
        self.statuses.pop((channel, str(thread_ts)), None)
        return message

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = _check_message(params)
        if problem:
            return {"ok": False, "error": problem}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        thread_ts = params.get("thread_ts") or None
        self.ephemerals.append(
            Ephemeral(str(params["channel"]), str(params["user"]), str(params.get("text", "")), thread_ts)
        )
        return {"ok": True, "message_ts": f"{1_800_000_000 + next(self._ts)}.000200"}

    # ---- streaming (chat.startStream, chat.appendStream, chat.stopStream)

    def _start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._streaming_refused:
            return {"ok": False, "error": self._streaming_refused}
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}  # streamed messages are thread replies
        if not str(channel).startswith("D"):  # in a channel, Slack must know whom the stream is for
            if not params.get("recipient_user_id"):
                return {"ok": False, "error": "missing_recipient_user_id"}
            if not params.get("recipient_team_id"):
                return {"ok": False, "error": "missing_recipient_team_id"}
        text, problem = _stream_text(params, so_far="")
        if problem:
            return {"ok": False, "error": problem}
        message = self._new_message(params, text, [])
        message.stream = "streaming"
        message.pieces = [text] if text else []
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _streaming(self, params: dict[str, Any]) -> Posted | str:
        for message in self.messages:
            if message.channel == params.get("channel") and message.ts == params.get("ts"):
                return message if message.stream == "streaming" else "message_not_in_streaming_state"
        return "message_not_found"

    def _append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._streaming(params)
        if isinstance(message, str):
            return {"ok": False, "error": message}
        text, problem = _stream_text(params, so_far=message.text)
        if problem or not text:
            return {"ok": False, "error": problem or "no_text"}
        message.text += text
        message.pieces.append(text)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._streaming(params)
        if isinstance(message, str):
            return {"ok": False, "error": message}
        text, problem = _stream_text(params, so_far=message.text)
        blocks = _blocks(params)
        problem = problem or _check_blocks(blocks)
        if problem:
            return {"ok": False, "error": problem}
        if text:
            message.text += text
            message.pieces.append(text)
        message.blocks = blocks  # rendered after the streamed text
        message.stream = "stopped"
        return {"ok": True, "channel": message.channel, "ts": message.ts, "message": {"text": message.text}}

    # ---- the agent's surfaces: loading status, suggested prompts

    def _set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, thread_ts = params.get("channel_id"), params.get("thread_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not thread_ts:
            return {"ok": False, "error": "invalid_thread_ts"}
        loading = list(params.get("loading_messages") or [])
        if "status" not in params or len(loading) > 10:
            return {"ok": False, "error": "invalid_arguments"}
        status = Status(str(params["status"]), [str(m) for m in loading])
        if status.status:
            self.statuses[(str(channel), str(thread_ts))] = status
        else:  # an empty status clears it
            self.statuses.pop((str(channel), str(thread_ts)), None)
        self.status_history.append((str(channel), str(thread_ts), status))
        return {"ok": True}

    def _set_suggested_prompts(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel_id")
        prompts = params.get("prompts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            return {"ok": False, "error": "invalid_arguments"}
        if not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        if params.get("thread_ts"):
            return {"ok": True}  # under the agent view a thread_ts is accepted, and nothing shows
        self.suggested_prompts[str(channel)] = (params.get("title"), [dict(p) for p in prompts])
        return {"ok": True}

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


def _stream_text(params: dict[str, Any], *, so_far: str) -> tuple[str, str | None]:
    """The text a stream call adds (markdown_text, or chunks of type markdown_text), or why Slack refuses it."""
    chunks = params.get("chunks") or []
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    pieces = [str(params.get("markdown_text") or "")]
    pieces += [
        str(c.get("text", "")) for c in chunks if isinstance(c, dict) and c.get("type") == "markdown_text"
    ]
    text = "".join(pieces)
    if (
        len(str(params.get("markdown_text") or "")) > MARKDOWN_LIMIT
        or len(so_far) + len(text) > MARKDOWN_LIMIT
    ):
        return text, "msg_too_long"
    return text, None


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
    return _check_blocks(blocks)


def _check_blocks(blocks: list[dict[str, Any]]) -> str | None:
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        kind = block.get("type")
        if kind == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            return "invalid_blocks"
        if kind == "context" and len(block.get("elements", [])) > 10:
            return "invalid_blocks"
        if kind == "context_actions" and not _valid_context_actions(block.get("elements")):
            return "invalid_blocks"
    return None


def _valid_context_actions(elements: Any) -> bool:
    """1 to 5 feedback_buttons or icon_button elements; a feedback button has a text of at most 75 characters
    and a value of at most 2,000."""
    if not isinstance(elements, list) or not 1 <= len(elements) <= 5:
        return False
    for element in elements:
        if element.get("type") == "icon_button":
            continue
        if element.get("type") != "feedback_buttons" or len(str(element.get("action_id", ""))) > 255:
            return False
        for side in ("positive_button", "negative_button"):
            button = element.get(side)
            if not isinstance(button, dict) or not button.get("value") or len(str(button["value"])) > 2000:
                return False
            label = button.get("text")
            if not isinstance(label, dict) or label.get("type") != "plain_text" or not label.get("text"):
                return False
            if len(str(label["text"])) > 75:
                return False
    return True
