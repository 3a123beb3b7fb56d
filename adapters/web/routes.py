"""Mounts the web channel on the shared aiohttp server, when it is configured."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters.web.api import Problem, StartSync, WebApi, harden
from adapters.web.config import WebConfig
from adapters.web.limits import LocalThrottles
from adapters.web.pages import ASSET_PREFIX, Pages
from rag.ports import Assistant, Throttles

_LOG = logging.getLogger(__name__)
ANONYMOUS_WARNING = (
    "WEB_ALLOW_ANONYMOUS is on: the chat page and POST /query answer ANYONE on this machine without "
    "credentials (loopback peers only). Use it only on a machine nobody else uses; set WEB_TOKENS or "
    "WEB_TRUSTED_PROXIES to serve people."
)
OFF_LINE = "web: WEB_TOKENS, WEB_TRUSTED_PROXIES and WEB_ALLOW_ANONYMOUS are unset: the web channel is off"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answering(handler: Handler) -> Handler:
    """A refusal as its short JSON error, with the channel's headers; anything else is the handler's."""

    @functools.wraps(handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Problem as problem:
            response = problem.response()
        if not response.prepared:
            harden(response)
        return response

    return handle


def add_web_routes(
    app: web.Application,
    *,
    config: WebConfig,
    assistant: Assistant,
    start_sync: StartSync,
    throttles: Throttles | None = None,
) -> WebApi | None:
    """Mounts /, /admin, /web/* and the JSON API; None (nothing mounted) when no way in is configured.
    `start_sync` is the server's own admin sync, which POST /ingest answers with; `throttles` the users' rate
    limits' store (this process's unless replicas share one)."""
    if not config.enabled:
        _LOG.info("%s", OFF_LINE)
        return None
    if config.allow_anonymous:
        _LOG.warning("%s", ANONYMOUS_WARNING)
    limit = config.rate_limit
    limiter = (throttles or LocalThrottles()).throttle(
        "web-questions", per_minute=limit.per_minute, burst=limit.burst
    )
    api = WebApi(config=config, assistant=assistant, start_sync=start_sync, limiter=limiter)
    pages = Pages()
    router = app.router
    router.add_get("/", pages.chat)
    router.add_get("/admin", pages.admin)
    router.add_get(ASSET_PREFIX + "{name}", pages.asset)
    router.add_post("/query", _answering(api.query))
    router.add_post("/query/stream", _answering(api.query_stream))
    router.add_post("/reset-session/{session_id}", _answering(api.reset))
    router.add_post("/feedback", _answering(api.feedback))
    router.add_get("/me", _answering(api.me))
    router.add_post("/ingest", _answering(api.ingest))
    app.on_cleanup.append(api.close)
    return api
