"""Messages into one Slack conversation: post, update, and a whole reply with its fallbacks.

Every call Slack refuses (or that fails on the way) is logged here in one line and reported to the caller as a
value, never raised: an answer finds another way out (an update becomes a post) or says Slack refused it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import texts
from adapters.slack.render import SlackMessage, render_notice
from adapters.slack.sessions import Conversation

log = logging.getLogger(__name__)

SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


def describe(error: BaseException) -> str:
    """What went wrong, fit for one log line: Slack's error code, or the exception's type and message."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error", "unknown_error"))
    return f"{type(error).__name__}: {error}"


class Poster:
    """chat.postMessage and chat.update into one conversation's thread (the top level of a DM has none)."""

    def __init__(self, client: AsyncWebClient, conversation: Conversation) -> None:
        self._client = client
        self.conversation = conversation

    async def post(self, message: SlackMessage) -> str | None:
        """Posts into the conversation's thread; returns the message ts, or None when Slack refused it."""
        kwargs = message.as_kwargs()
        if self.conversation.thread_ts:
            kwargs["thread_ts"] = self.conversation.thread_ts
        channel = self.conversation.channel_id
        try:
            response = await self._client.chat_postMessage(
                channel=channel, unfurl_links=False, unfurl_media=False, **kwargs
            )
        except SLACK_ERRORS as error:
            log.warning("Slack: chat.postMessage to %s failed: %s", channel, describe(error))
            return None
        ts = response.get("ts")
        return ts if isinstance(ts, str) else None

    async def update(self, ts: str, message: SlackMessage) -> bool:
        channel = self.conversation.channel_id
        try:
            await self._client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
        except SLACK_ERRORS as error:
            log.warning("Slack: chat.update in %s failed: %s", channel, describe(error))
            return False
        return True

    async def deliver(self, messages: Sequence[SlackMessage], replacing: str | None) -> None:
        """The reply's messages: the first replaces the message `replacing` names (a placeholder, a draft)
        when Slack lets it, else is posted; if Slack takes none of them, a short note says so."""
        first, *rest = messages
        delivered = replacing is not None and await self.update(replacing, first)
        delivered = delivered or await self.post(first) is not None
        for message in rest:
            delivered = await self.post(message) is not None and delivered
        if not delivered:
            await self.post(render_notice(texts.SLACK_REFUSED))
