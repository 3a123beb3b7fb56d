"""The bot as it runs in production: the aiohttp server with add_slack_routes, on a loopback port."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.slack import (
    EVENTS_PATH,
    SLACK_BOT_KEY,
    Pace,
    SlackBot,
    add_slack_routes,
    build_web_client,
    texts,
)
from bot.config import Settings
from bot.platforms import slack_config
from rag.ports import Dedupe

from .fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack, Posted
from .slack_payloads import SIGNING_SECRET, as_json, envelope, feedback_click, sign, slash_command


def slack_settings(fake: FakeSlack, *, socket_mode: bool = False, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "slack_app_token": APP_TOKEN if socket_mode else "",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Answer:
    status: int
    body: str
    elapsed_s: float

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def finished(message: Posted) -> bool:
    """Whether a message of the bot's is done: not the "working" placeholder, a stream still going or a draft
    still marked as being written."""
    writing = any(
        element.get("text") == texts.WRITING
        for block in message.blocks
        for element in block.get("elements", [])
    )
    return message.text != texts.WORKING and message.stream != "streaming" and not writing


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


class SlackServer:
    def __init__(
        self,
        fake: FakeSlack,
        assistant: Any,
        *,
        socket_mode: bool = False,
        bot: SlackBot | None = None,
        dedupe: Dedupe | None = None,
        pace: Pace | None = None,
    ):
        self.fake = fake
        self.assistant = assistant
        self.web_app = web.Application()
        self.web_app.router.add_get("/healthz", _healthz)
        if (
            bot is None and pace is not None
        ):  # the production bot with other timings, as add_slack_routes builds it
            config = slack_config(slack_settings(fake))
            bot = SlackBot(
                client=build_web_client(config),
                assistant=assistant,
                signing_secret=config.signing_secret,
                dedupe=dedupe,
                pace=pace,
            )
        if bot is None:
            add_slack_routes(
                self.web_app,
                config=slack_config(slack_settings(fake, socket_mode=socket_mode)),
                assistant=assistant,
                dedupe=dedupe,
            )
            self.bot = self.web_app[SLACK_BOT_KEY]
        else:  # a bot built with test-only timings, mounted the way add_slack_routes mounts it
            self.bot = bot
            self.web_app.router.add_post(EVENTS_PATH, bot.handle_http)
            self.web_app.on_cleanup.append(lambda _: bot.close())
        self.server = TestServer(self.web_app, host="127.0.0.1")
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.server.start_server()
        self.http = aiohttp.ClientSession()

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        await self.server.close()

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def post(
        self, body: str, headers: dict[str, str], content_type: str = "application/json"
    ) -> Answer:
        assert self.http is not None
        started = time.perf_counter()
        async with self.http.post(
            self.url(EVENTS_PATH), data=body.encode(), headers={"Content-Type": content_type, **headers}
        ) as response:
            text = await response.text()
            return Answer(response.status, text, time.perf_counter() - started)

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None
    ) -> tuple[Answer, dict[str, Any]]:
        """Delivers one event as Slack does; returns the HTTP answer and the envelope (for a redelivery)."""
        body = envelope(event, event_id=event_id)
        return await self.deliver(body, retry=retry), body

    async def deliver(self, body: dict[str, Any], *, retry: int | None = None) -> Answer:
        raw = as_json(body)
        headers = sign(raw)
        if retry is not None:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(raw, headers)

    async def command(
        self, *, channel: str, user: str, text: str = "", command: str = "/wiki-reset"
    ) -> Answer:
        raw = slash_command(channel=channel, user=user, text=text, command=command)
        return await self.post(raw, sign(raw), content_type="application/x-www-form-urlencoded")

    async def click(self, **click: Any) -> Answer:
        """A signed block_actions interaction (see slack_payloads.feedback_click for the arguments)."""
        raw = feedback_click(**click)
        return await self.post(raw, sign(raw), content_type="application/x-www-form-urlencoded")

    async def get(self, path: str) -> int:
        assert self.http is not None
        async with self.http.get(self.url(path)) as response:
            return response.status
