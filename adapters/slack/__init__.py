"""Slack channel: a slack-bolt async app mounted on the project's aiohttp server, or over Socket Mode.

HTTP mode: POST /slack/events takes events, slash commands and interactions (the feedback buttons) alike, every
request signature-checked.
Socket Mode (an app-level token in the config): the app dials out to Slack; no public URL, and no
/slack/events route. Everything comes in one `SlackConfig`, which the composition root builds from its
settings and checks first: this package reads no settings and no environment of its own.
"""

from __future__ import annotations

from aiohttp import web
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.config import SlackConfig
from adapters.slack.handler import ACTIONS, COMMANDS, EVENT_TYPES, SlackBot
from adapters.slack.progress import Pace
from adapters.slack.sessions import Conversation, conversation_of
from rag.ports import Assistant, Dedupe

__all__ = [
    "ACTIONS",
    "COMMANDS",
    "EVENTS_PATH",
    "EVENT_TYPES",
    "SLACK_BOT_KEY",
    "Conversation",
    "Pace",
    "SlackBot",
    "SlackConfig",
    "add_slack_routes",
    "build_slack_bot",
    "build_web_client",
    "conversation_of",
]

EVENTS_PATH = "/slack/events"
SLACK_BOT_KEY = web.AppKey("slack_bot", SlackBot)


def build_web_client(config: SlackConfig) -> AsyncWebClient:
    """The Web API client every Slack call goes through, Socket Mode's apps.connections.open included."""
    # The SDK joins method names onto base_url as is: without the trailing slash every call would 404.
    base_url = config.api_url if config.api_url.endswith("/") else config.api_url + "/"
    return AsyncWebClient(
        token=config.bot_token,
        base_url=base_url,
        timeout=15,
        # The default client retries connection errors only: a 429 would otherwise lose the answer.
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def build_slack_bot(config: SlackConfig, assistant: Assistant, *, dedupe: Dedupe | None = None) -> SlackBot:
    """Builds the bot; connects nothing. `dedupe` shares redeliveries between replicas (default: in memory)."""
    return SlackBot(
        client=build_web_client(config),
        assistant=assistant,
        signing_secret=config.signing_secret,
        dedupe=dedupe,
    )


def add_slack_routes(
    web_app: web.Application, *, config: SlackConfig, assistant: Assistant, dedupe: Dedupe | None = None
) -> None:
    """Mounts Slack on the server: POST /slack/events in HTTP mode, or a Socket Mode client started with it."""
    slack = build_slack_bot(config, assistant, dedupe=dedupe)
    web_app[SLACK_BOT_KEY] = slack
    if config.socket_mode:
        app_token = config.app_token

        async def start_socket_mode(_: web.Application) -> None:
            await slack.start_socket_mode(app_token)

        web_app.on_startup.append(start_socket_mode)
    else:
        web_app.router.add_post(EVENTS_PATH, slack.handle_http)

    async def close(_: web.Application) -> None:
        await slack.close()

    web_app.on_cleanup.append(close)
