"""The Slack bot: a Bolt AsyncApp whose listeners only sort and acknowledge; answers run after the ack.

Slack retries anything not acknowledged within 3 s, so no listener awaits the core: each hands a background task
to this object, which keeps a reference to it (asyncio keeps only weak ones) and cancels it on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import texts
from adapters.slack.events import InboundMessage, read_message
from adapters.slack.memory import KeyedLocks, RecentKeys, ThreadMemory
from adapters.slack.ports import SlackAssistant
from adapters.slack.render import SlackMessage, render_notice, render_reply
from adapters.slack.sessions import Conversation, channel_prefix, is_dm_channel, valid_id
from rag.commands import HELP_TEXT, RESET_SLASH_COMMAND, Command, parse_command
from rag.types import IncomingMessage, Reply

log = logging.getLogger(__name__)

# What the app listens to; manifest/slack.yaml must subscribe to exactly these (a test checks both ways).
EVENT_TYPES = ("app_mention", "message")
COMMANDS = (RESET_SLASH_COMMAND,)

# Slack retries for a few minutes; an hour of memory covers every retry with room to spare.
_DEDUPE_TTL_S = 3600.0
_DEDUPE_MAX = 20_000
_SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


class SlackBot:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        assistant: SlackAssistant,
        signing_secret: str,
        answer_timeout_s: float = 180.0,
        reset_timeout_s: float = 2.0,
        max_concurrent_answers: int = 8,
    ) -> None:
        self.client = client
        self._assistant = assistant
        # Socket Mode needs no signing secret; without one, every HTTP request is refused.
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._answer_timeout_s = answer_timeout_s
        self._reset_timeout_s = reset_timeout_s
        self._slots = asyncio.Semaphore(max_concurrent_answers)
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen_events = RecentKeys(ttl_s=_DEDUPE_TTL_S, max_size=_DEDUPE_MAX)
        self._seen_messages = RecentKeys(ttl_s=_DEDUPE_TTL_S, max_size=_DEDUPE_MAX)
        self._threads = ThreadMemory()
        self._turns = KeyedLocks()
        self._socket: AsyncSocketModeHandler | None = None
        self.app = AsyncApp(
            client=client,
            signing_secret=signing_secret,
            request_verification_enabled=bool(signing_secret),
            name="wikibot",
            logger=logging.getLogger("adapters.slack.bolt"),
        )
        for event_type in EVENT_TYPES:
            self.app.event(event_type)(self._on_event)
        self.app.command(RESET_SLASH_COMMAND)(self._on_reset_command)

    # ---- transports

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """POST /slack/events: events, slash commands and url_verification, all signed by Slack."""
        try:
            body = await request.text()
        except UnicodeDecodeError:
            return web.json_response({"error": "body is not UTF-8"}, status=400)
        # Checked here as well as by Bolt so that nothing unsigned is even parsed.
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        # SignatureVerifier raises on a non-numeric timestamp: an attacker's garbage must be a plain 401.
        well_formed = timestamp.isdigit() and len(timestamp) <= 12 and signature.startswith("v0=")
        verifier = self._verifier
        if not (verifier and well_formed and verifier.is_valid(body, timestamp, signature)):
            log.warning("Slack: refused a request with a bad or stale signature from %s", request.remote)
            return web.json_response({"error": "invalid signature"}, status=401)
        retry = request.headers.get("X-Slack-Retry-Num")
        if retry:
            log.info("Slack: redelivery #%s (%s)", retry, request.headers.get("X-Slack-Retry-Reason", "?"))
        try:
            bolt_request = await to_bolt_request(request)
            if not isinstance(bolt_request.body.get("event", {}), dict):
                raise ValueError("event is not an object")
        except Exception as error:
            # Bolt trusts the shape of a signed body (a list, an event that is a string...): such a body is
            # refused here rather than becoming a 500 and a redelivery loop.
            log.warning("Slack: refused a malformed request (%s: %s)", type(error).__name__, error)
            return web.json_response({"error": "malformed body"}, status=400)
        try:
            bolt_response = await self.app.async_dispatch(bolt_request)
        except Exception:
            # Our fault, maybe transient: a 500 lets Slack redeliver, and the dedupe keeps that to one answer.
            log.exception("Slack: dispatching a request failed")
            return web.json_response({"error": "internal error"}, status=500)
        return await to_aiohttp_response(bolt_response)

    async def start_socket_mode(self, app_token: str) -> None:
        """Connects in the background: the server keeps serving (and /healthz answering) while Slack is away."""
        handler = AsyncSocketModeHandler(self.app, app_token=app_token, web_client=self.client)
        self._socket = handler
        self._spawn(handler.connect_async(), name="slack-socket-connect")  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Waits for every answer in flight (tests and graceful shutdowns)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---- listeners: no awaiting of slow work in here

    async def _on_event(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        event_id = body.get("event_id")
        if isinstance(event_id, str) and event_id and not self._seen_events.add_if_new(event_id):
            log.info("Slack: dropped event %s, already handled", event_id)
            return
        message = read_message(body, bot_user_id=context.bot_user_id or "", bot_id=context.bot_id or "")
        if message is None or not self._addressed_to_bot(message):
            return
        if not self._seen_messages.add_if_new(message.dedupe_key):
            log.info("Slack: dropped %s for %s, already handled", message.event_type, message.dedupe_key)
            return
        self._spawn(self._respond(message), name="slack-answer")

    def _addressed_to_bot(self, message: InboundMessage) -> bool:
        conversation = message.conversation
        if conversation.is_dm or message.event_type == "app_mention":
            return True
        if message.mentions_bot:
            return False  # the same message's app_mention event is the one answered
        # A reply in a channel thread the bot answered continues without a mention, unless it speaks to someone.
        in_thread = conversation.thread_ts != message.ts
        return in_thread and self._threads.is_known(conversation.session_key) and not message.mentions_others

    async def _on_reset_command(
        self, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        # Bolt answers 404 to a command not acknowledged within 3 s: the reset gets a deadline well below that.
        try:
            text = await asyncio.wait_for(
                self._reset_for_command(command, bot_user_id=context.bot_user_id or ""),
                self._reset_timeout_s,
            )
        except TimeoutError:
            log.warning("Slack: /wiki-reset took longer than %.1f s", self._reset_timeout_s)
            text = texts.RESET_SLOW
        except Exception:
            log.exception("Slack: /wiki-reset failed")
            text = texts.RESET_FAILED
        await ack(text=render_notice(text).text, response_type="ephemeral")

    # ---- work after the ack

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reset_for_command(self, command: dict[str, Any], *, bot_user_id: str) -> str:
        team, channel, user = command.get("team_id"), command.get("channel_id"), command.get("user_id")
        if not (valid_id(team) and valid_id(channel) and valid_id(user)):
            return texts.RESET_BAD_PAYLOAD
        team, channel, user = str(team), str(channel), str(user)
        if is_dm_channel(channel):
            count = await self._assistant.reset_prefix(channel_prefix(team, channel))
            return texts.RESET_DM_DONE if count else texts.RESET_DM_NOTHING
        keys = self._threads.threads_of(team_id=team, channel_id=channel, user_id=user)
        for key in keys:
            await self._assistant.reset(key)
        self._threads.forget_person(team_id=team, channel_id=channel, user_id=user)
        if keys:
            return texts.reset_channel_done(len(keys))
        return texts.reset_channel_nothing(f"<@{bot_user_id}>" if bot_user_id else "@WikiBot")

    async def _respond(self, message: InboundMessage) -> None:
        conversation = message.conversation
        try:
            if message.file_only:
                await self._post(conversation, render_notice(texts.FILE_ONLY))
                return
            command = parse_command(message.text) if message.text else Command.HELP
            if command is Command.HELP:
                await self._post(conversation, render_notice(HELP_TEXT))
            elif command is Command.RESET:
                await self._reset_thread(message)
            else:
                await self._answer(message)
        except Exception:
            # Last resort: the task must end quietly whatever happened; the details go to the log only.
            log.exception("Slack: failed to respond to %s", message.dedupe_key)

    async def _reset_thread(self, message: InboundMessage) -> None:
        conversation = message.conversation
        try:
            await self._assistant.reset(conversation.session_key)
        except Exception:
            log.exception("Slack: reset of %s failed", conversation.session_key)
            await self._post(conversation, render_notice(texts.RESET_FAILED))
            return
        self._remember(message)
        done = texts.RESET_THREAD if conversation.thread_ts else texts.RESET_DM
        await self._post(conversation, render_notice(done))

    async def _answer(self, message: InboundMessage) -> None:
        conversation = message.conversation
        # The "working" signal comes first: before the queue for a slot and before the core's retrieval.
        placeholder = await self._post(conversation, render_notice(texts.WORKING))
        self._remember(message)
        # One turn at a time per session, so a quick follow-up sees the answer before it; then a free slot.
        async with self._turns.hold(conversation.session_key), self._slots:
            reply = await self._ask(message)
        await self._deliver(conversation, render_reply(reply), placeholder)

    async def _ask(self, message: InboundMessage) -> Reply:
        question = IncomingMessage(
            session_key=message.conversation.session_key,
            text=message.text,
            user_id=message.user_id,
            platform="slack",
        )
        try:
            return await asyncio.wait_for(self._assistant.ask(question), self._answer_timeout_s)
        except TimeoutError:
            log.warning("Slack: no answer within %.0f s for %s", self._answer_timeout_s, message.dedupe_key)
            return Reply(text=texts.TIMEOUT, grounded=False, mode="error")
        except Exception:
            log.exception("Slack: the assistant failed on %s", message.dedupe_key)
            return Reply(text=texts.FAILURE, grounded=False, mode="error")

    def _remember(self, message: InboundMessage) -> None:
        conversation = message.conversation
        if not conversation.is_dm:
            self._threads.remember(
                session_key=conversation.session_key,
                team_id=conversation.team_id,
                channel_id=conversation.channel_id,
                user_id=message.user_id,
            )

    async def _deliver(
        self, conversation: Conversation, messages: list[SlackMessage], placeholder: str | None
    ) -> None:
        first, *rest = messages
        delivered = placeholder is not None and await self._update(conversation, placeholder, first)
        delivered = delivered or await self._post(conversation, first) is not None
        for message in rest:
            delivered = await self._post(conversation, message) is not None and delivered
        if not delivered:
            await self._post(conversation, render_notice(texts.SLACK_REFUSED))

    async def _post(self, conversation: Conversation, message: SlackMessage) -> str | None:
        """Posts into the conversation's thread; returns the message ts, or None when Slack refused it."""
        kwargs = message.as_kwargs()
        if conversation.thread_ts:
            kwargs["thread_ts"] = conversation.thread_ts
        try:
            response = await self.client.chat_postMessage(
                channel=conversation.channel_id, unfurl_links=False, unfurl_media=False, **kwargs
            )
        except _SLACK_ERRORS as error:
            log.warning("Slack: chat.postMessage to %s failed: %s", conversation.channel_id, _describe(error))
            return None
        ts = response.get("ts")
        return ts if isinstance(ts, str) else None

    async def _update(self, conversation: Conversation, ts: str, message: SlackMessage) -> bool:
        try:
            await self.client.chat_update(channel=conversation.channel_id, ts=ts, **message.as_kwargs())
        except _SLACK_ERRORS as error:
            log.warning("Slack: chat.update in %s failed: %s", conversation.channel_id, _describe(error))
            return False
        return True


def _describe(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error", "unknown_error"))
    return f"{type(error).__name__}: {error}"
