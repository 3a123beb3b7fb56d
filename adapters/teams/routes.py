"""POST /api/messages on the shared aiohttp server, through botbuilder's CloudAdapter."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from azure.core.exceptions import DeserializationError
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity

from adapters.teams.auth import build_authentication
from adapters.teams.bot import Timing, WikiTeamsBot, on_turn_error
from adapters.teams.config import TeamsConfig
from adapters.teams.tasks import BackgroundTasks
from rag.ports import Assistant, Dedupe

_LOG = logging.getLogger(__name__)
MESSAGES_PATH = "/api/messages"
_NO_BODY = b"null"
ANONYMOUS_WARNING = (
    "TEAMS_ALLOW_ANONYMOUS is on and MICROSOFT_APP_ID is empty: POST %s accepts UNAUTHENTICATED requests "
    "and posts wiki answers to whatever serviceUrl the caller names. Use this only with the Bot Framework "
    "Emulator on a machine nobody else can reach; set MICROSOFT_APP_ID (and its password) for Teams."
)


class TeamsEndpoint:
    """Owns the SDK adapter, the bot and their background tasks for one web application."""

    def __init__(
        self,
        *,
        config: TeamsConfig,
        assistant: Assistant,
        timing: Timing | None = None,
        dedupe: Dedupe | None = None,
    ) -> None:
        self.tasks = BackgroundTasks()
        self.adapter = CloudAdapter(build_authentication(config))
        self.adapter.on_turn_error = on_turn_error
        self.bot = WikiTeamsBot(
            assistant=assistant,
            adapter=self.adapter,
            app_id=config.app_id,
            tasks=self.tasks,
            timing=timing or Timing(),
            dedupe=dedupe,
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="expected application/json")
        # Garbage bodies would otherwise surface as 500s from inside the SDK.
        try:
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("type"), str):
                raise ValueError("not an activity")
            Activity().deserialize(body)
        except (ValueError, json.JSONDecodeError, DeserializationError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="expected a Bot Framework activity") from None
        response: web.StreamResponse | None = await self.adapter.process(request, self.bot)
        if response is None:
            return web.Response(status=201)
        if isinstance(response, web.Response) and response.body == _NO_BODY:
            # The SDK writes an InvokeResponse without a body as JSON `null`; Teams refuses any body in the answer
            # to a submitAction (feedback), so none is sent.
            return web.Response(status=response.status)
        return response

    async def close(self, _app: web.Application | None = None) -> None:
        await self.tasks.close()


def add_teams_routes(
    web_app: web.Application, *, config: TeamsConfig, assistant: Assistant, dedupe: Dedupe | None = None
) -> None:
    """Mounts POST /api/messages when Teams is configured; cancels background replies on cleanup.
    `dedupe` shares redeliveries between replicas (default: in memory)."""
    mount_teams_endpoint(web_app, config=config, assistant=assistant, dedupe=dedupe)


def mount_teams_endpoint(
    web_app: web.Application,
    *,
    config: TeamsConfig,
    assistant: Assistant,
    timing: Timing | None = None,
    dedupe: Dedupe | None = None,
) -> TeamsEndpoint | None:
    if not config.app_id:
        if not config.allow_anonymous:
            _LOG.info("teams: MICROSOFT_APP_ID is not set; the Teams endpoint is off")
            return None
        _LOG.warning(ANONYMOUS_WARNING, MESSAGES_PATH)
    endpoint = TeamsEndpoint(config=config, assistant=assistant, timing=timing, dedupe=dedupe)
    web_app.router.add_post(MESSAGES_PATH, endpoint.handle)
    web_app.on_cleanup.append(endpoint.close)
    return endpoint
