"""The web channel's JSON API: questions (whole or streamed), resets, ratings, and the admin's sync.

    POST /query                     {session_id, query} → {session_id, answer, sources, history}
    POST /query/stream              the same question; NDJSON: {"event": "draft", "html"} lines as the model
                                    writes, then {"event": "answer", ...the /query fields, html, links, kind,
                                    answer_id}
    POST /reset-session/{id}        → {status: "reset", session_id}
    POST /feedback                  {answer_id, rating: "up"|"down"} → {status: "recorded"}
    GET  /me                        → {user, admin}
    POST /ingest                    a sync, as POST /admin/sync (admin only): 202, or 409 while one runs

A session id names a conversation only within its user's own namespace (`web:<user>:<id>`): the same id sent
by someone else is their own, empty conversation, never a way into this one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from adapters.web.auth import Authenticator, Identity, Refused
from adapters.web.config import WebConfig
from adapters.web.limits import retry_after
from adapters.web.render import MAX_SOURCES, render_draft, render_reply, source_title
from rag import texts
from rag.ports import Assistant, Throttle
from rag.safe_text import is_web_url, source_url
from rag.types import Feedback, IncomingMessage, Rating, Reply, ReplyKind

_LOG = logging.getLogger(__name__)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ANSWER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Drafts arrive word by word; the page gets the newest at most this often (each one is the whole text so far).
_DRAFT_INTERVAL_S = 0.1
NDJSON = "application/x-ndjson"

StartSync = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """A request refused with a status and one short sentence."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}

    def response(self) -> web.Response:
        return web.json_response({"error": str(self)}, status=self.status, headers=self.headers)


class _Drafts:
    """rag.ports.Progress for one streamed answer: keeps the newest draft and returns at once; the handler
    sends at its own pace (a slow reader never holds up the model)."""

    def __init__(self) -> None:
        self.text = ""
        self.changed = asyncio.Event()

    async def working(self) -> None:
        return None

    async def draft(self, text: str) -> None:
        self.text = text
        self.changed.set()


class WebApi:
    def __init__(
        self, *, config: WebConfig, assistant: Assistant, start_sync: StartSync, limiter: Throttle
    ) -> None:
        self._config = config
        self._assistant = assistant
        self._start_sync = start_sync
        self._auth = Authenticator(config)
        self._limiter = limiter
        # Answers whose reader left keep running to the end (their turn is recorded): kept referenced here.
        self._answers: set[asyncio.Task[Reply]] = set()

    def is_admin(self, request: web.Request) -> bool:
        return self._auth.is_admin(request)

    # ---- handlers

    async def query(self, request: web.Request) -> web.StreamResponse:
        _, message, session_id = await self._question(request)
        reply = await self._assistant.ask(message)
        if reply.kind is ReplyKind.ERROR:
            raise Problem(503, reply.text)
        return web.json_response(await self._answer_body(message, session_id, reply))

    async def query_stream(self, request: web.Request) -> web.StreamResponse:
        identity, message, session_id = await self._question(request)
        response = web.StreamResponse(headers={"Content-Type": NDJSON, "X-Accel-Buffering": "no"})
        harden(response)
        await response.prepare(request)
        drafts = _Drafts()
        answer = asyncio.get_running_loop().create_task(self._assistant.ask(message, progress=drafts))
        self._answers.add(answer)
        answer.add_done_callback(self._answers.discard)
        try:
            await self._send_drafts(response, drafts, answer)
            reply = await answer
            body = await self._answer_body(message, session_id, reply)
            # The links the page keeps: the sources' own, as the renderer wrote them; any other is dropped.
            links = [href for s in reply.sources[:MAX_SOURCES] if (href := source_url(s.url))]
            event = {"event": "answer", **body, "html": render_reply(reply), "links": links}
            await _send(response, {**event, "kind": reply.kind.value, "answer_id": reply.answer_id})
            await response.write_eof()
        except ConnectionResetError:
            _LOG.info("web: %s left before the answer in session %s was complete", identity.name, session_id)
        return response

    async def reset(self, request: web.Request) -> web.Response:
        identity = self._identify(request)
        await self._take(identity)
        session_id = _session_id(request.match_info.get("session_id", ""))
        reply = await self._assistant.ask(self._message(identity, session_id, "reset"))
        if reply.text == texts.RESET_FAILED:
            raise Problem(503, reply.text)
        return web.json_response({"status": "reset", "session_id": session_id})

    async def feedback(self, request: web.Request) -> web.Response:
        identity = self._identify(request)
        await self._take(identity)
        body = await self._json(request)
        answer_id, rating = body.get("answer_id"), body.get("rating")
        if not isinstance(answer_id, str) or not _ANSWER_ID.match(answer_id):
            raise Problem(400, "answer_id must be the answer_id of an answer")
        if rating not in ("up", "down"):
            raise Problem(400, 'rating must be "up" or "down"')
        feedback = Feedback(answer_id, Rating(rating), user_id=identity.user_id, platform="web")
        if not await self._assistant.feedback(feedback):
            raise Problem(404, "no such answer (or ratings are not kept)")
        return web.json_response({"status": "recorded"})

    async def me(self, request: web.Request) -> web.Response:
        identity = self._identify(request)
        return web.json_response({"user": identity.name, "admin": identity.admin})

    async def ingest(self, request: web.Request) -> web.StreamResponse:
        if not self._identify(request).admin:
            raise Problem(401, "an admin token is required")
        return await self._start_sync(request)

    # ---- steps

    def _identify(self, request: web.Request) -> Identity:
        try:
            return self._auth.identify(request)
        except Refused as refused:
            raise Problem(401, str(refused), headers={"WWW-Authenticate": 'Bearer realm="wikibot"'}) from None

    async def _take(self, identity: Identity) -> None:
        wait_s = await self._limiter.take(identity.user_id)
        if wait_s > 0:
            raise Problem(
                429, "too many requests: wait a moment", headers={"Retry-After": retry_after(wait_s)}
            )

    async def _question(self, request: web.Request) -> tuple[Identity, IncomingMessage, str]:
        identity = self._identify(request)
        await self._take(identity)
        body = await self._json(request)
        session_id = _session_id(body.get("session_id"))
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise Problem(400, "query must be a non-empty string")
        _LOG.info("web: %s asks in session %s", identity.name, session_id)
        return identity, self._message(identity, session_id, query), session_id

    @staticmethod
    def _message(identity: Identity, session_id: str, text: str) -> IncomingMessage:
        return IncomingMessage(
            session_key=f"web:{identity.user_id}:{session_id}",
            text=text,
            user_id=identity.user_id,
            platform="web",
        )

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise Problem(400, "send a JSON body (Content-Type: application/json)")
        limit = self._config.max_body_bytes
        too_large = Problem(413, f"the body is larger than {limit} bytes")
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.content.iter_chunked(16384):
            body += chunk
            if len(body) > limit:
                raise too_large
        try:
            value = json.loads(bytes(body))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise Problem(400, "the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise Problem(400, "the body must be a JSON object")
        return value

    async def _answer_body(self, message: IncomingMessage, session_id: str, reply: Reply) -> dict[str, Any]:
        history = await self._assistant.history(message.session_key)
        return {
            "session_id": session_id,
            "answer": reply.text,
            "sources": [
                {
                    "page_id": source.page_id,
                    "title": source_title(source),
                    "url": source.url if is_web_url(source.url) else "",
                }
                for source in reply.sources
            ],
            "history": [{"role": turn.role, "content": turn.content} for turn in history],
        }

    async def _send_drafts(
        self, response: web.StreamResponse, drafts: _Drafts, answer: asyncio.Task[Reply]
    ) -> None:
        sent = ""
        while not answer.done():
            changed = asyncio.ensure_future(drafts.changed.wait())
            await asyncio.wait({answer, changed}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            drafts.changed.clear()
            if answer.done() or drafts.text == sent:
                continue
            sent = drafts.text
            await _send(response, {"event": "draft", "html": render_draft(sent)})
            await asyncio.wait({answer}, timeout=_DRAFT_INTERVAL_S)

    async def close(self, _app: web.Application | None = None) -> None:
        for answer in list(self._answers):
            answer.cancel()
        await asyncio.gather(*self._answers, return_exceptions=True)


def _session_id(value: object) -> str:
    if not isinstance(value, str) or not _SESSION_ID.match(value):
        raise Problem(400, "session_id must be 1-64 letters, digits, '-' or '_'")
    return value


async def _send(response: web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")


def harden(response: web.StreamResponse) -> None:
    """Headers every web channel response carries; the pages add their Content-Security-Policy."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
