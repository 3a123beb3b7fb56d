"""Slack channel: a slack-bolt async app mounted on the project's aiohttp server, or over Socket Mode.

HTTP mode: POST /slack/events takes events and slash commands alike, every request signature-checked.
Socket Mode (SLACK_APP_TOKEN set): the app dials out to Slack; no public URL, and no /slack/events route.
"""

from __future__ import annotations

import os

from aiohttp import web
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.handler import COMMANDS, EVENT_TYPES, SlackBot
from adapters.slack.sessions import Conversation, conversation_of
from bot.config import Settings, SettingsError
from rag.ports import Assistant

__all__ = [
    "COMMANDS",
    "EVENTS_PATH",
    "EVENT_TYPES",
    "SLACK_BOT_KEY",
    "Conversation",
    "SlackBot",
    "add_slack_routes",
    "build_slack_bot",
    "build_web_client",
    "conversation_of",
]

EVENTS_PATH = "/slack/events"
SLACK_BOT_KEY = web.AppKey("slack_bot", SlackBot)


def build_web_client(settings: Settings) -> AsyncWebClient:
    """The Web API client every Slack call goes through, Socket Mode's apps.connections.open included."""
    base_url = (
        settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    )
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url,
        timeout=15,
        # The default client retries connection errors only: a 429 would otherwise lose the answer.
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def build_slack_bot(settings: Settings, assistant: Assistant) -> SlackBot:
    """Checks the Slack settings (SettingsError names the variable) and builds the bot; connects nothing."""
    bot_token = settings.slack_bot_token.get_secret_value()
    app_token = settings.slack_app_token.get_secret_value()
    secret = settings.slack_signing_secret.get_secret_value()
    if not bot_token:
        raise SettingsError(
            "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) of your Slack app"
        )
    if bot_token.startswith("xapp-"):
        raise SettingsError(
            "SLACK_BOT_TOKEN holds an app-level token (xapp-…): that one goes in SLACK_APP_TOKEN"
        )
    if app_token and not app_token.startswith("xapp-"):
        raise SettingsError(
            "SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope"
        )
    if not app_token and not secret:
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page "
            "(or set SLACK_APP_TOKEN to use Socket Mode)"
        )
    if os.environ.get("SLACK_CLIENT_ID") and os.environ.get("SLACK_CLIENT_SECRET"):
        # Bolt reads these two behind our back and turns into a multi-workspace OAuth app, dropping the bot token.
        raise SettingsError(
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set: WikiBot is a single-workspace app, unset them "
            "(Slack's SDK would otherwise ignore SLACK_BOT_TOKEN)"
        )
    return SlackBot(client=build_web_client(settings), assistant=assistant, signing_secret=secret)


def add_slack_routes(web_app: web.Application, *, settings: Settings, assistant: Assistant) -> None:
    """Mounts Slack on the server: POST /slack/events in HTTP mode, or a Socket Mode client started with it."""
    slack = build_slack_bot(settings, assistant)
    web_app[SLACK_BOT_KEY] = slack
    app_token = settings.slack_app_token.get_secret_value()
    if app_token:

        async def start_socket_mode(_: web.Application) -> None:
            await slack.start_socket_mode(app_token)

        web_app.on_startup.append(start_socket_mode)
    else:
        web_app.router.add_post(EVENTS_PATH, slack.handle_http)

    async def close(_: web.Application) -> None:
        await slack.close()

    web_app.on_cleanup.append(close)
