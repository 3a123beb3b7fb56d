"""The Slack bot: a Bolt AsyncApp whose listeners only sort and acknowledge; the work runs after the ack.

Slack retries anything not acknowledged within 3 s, so no listener awaits an answer, a feedback click's record or
a Messages tab's suggestions: each hands a background task to this object, which keeps a reference to it
(asyncio keeps only weak ones) and cancels it on shutdown. What to answer (commands, sessions, resets, timeouts)
is the core's; how an answer shows while it is written is `progress.py`'s: this module only translates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.redelivery import LocalDedupe
from adapters.slack import texts
from adapters.slack.delivery import SLACK_ERRORS, describe
from adapters.slack.events import InboundMessage, read_message
from adapters.slack.feedback import FEEDBACK_ACTION, read_click
from adapters.slack.progress import Pace, Recipient, SlackProgress, StreamRefusals
from adapters.slack.render import render_notice
from adapters.slack.sessions import channel_prefix, is_dm_channel, valid_id
from rag import texts as core_texts
from rag.ports import Assistant, Dedupe
from rag.safe_text import clean
from rag.types import IncomingMessage, Place, Reply, Scope

log = logging.getLogger(__name__)

RESET_SLASH_COMMAND = "/wiki-reset"
# A user's words for the bot, answered; and the agent's Messages tab opened, where the suggestions go.
MESSAGE_EVENTS = ("app_mention", "message")
HOME_OPENED = "app_home_opened"
# What the app listens to; manifest/slack.yaml must subscribe to exactly these (a test checks both ways), and
# turn interactivity on exactly when there are actions (buttons) to take.
EVENT_TYPES = (*MESSAGE_EVENTS, HOME_OPENED)
COMMANDS = (RESET_SLASH_COMMAND,)
ACTIONS = (FEEDBACK_ACTION,)

# Slack retries for a few minutes; an hour of memory covers every retry with room to spare.
_DEDUPE_TTL_S = 3600.0
_DEDUPE_MAX = 20_000
_MESSAGE = "wikibot_message"
_MAX_SUGGESTIONS = 4  # what assistant.threads.setSuggestedPrompts takes


class _TokenFromEnvironment(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when given a client, and then warns at every
    start that it ignores it: it does, on purpose (the client carries the token from our settings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _bolt_logger() -> logging.Logger:
    bolt_log = logging.getLogger("adapters.slack.bolt")
    if not any(isinstance(f, _TokenFromEnvironment) for f in bolt_log.filters):
        bolt_log.addFilter(_TokenFromEnvironment())
    return bolt_log


def _handled() -> BoltResponse:
    """What a middleware returns for a request it settles itself: a plain 200, so Slack does not retry."""
    return BoltResponse(status=200, body="")


class SlackBot:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        assistant: Assistant,
        signing_secret: str,
        dedupe: Dedupe | None = None,
        pace: Pace | None = None,
    ) -> None:
        self.client = client
        self._assistant = assistant
        self._pace = pace or Pace()
        self._refusals = StreamRefusals()
        # Socket Mode needs no signing secret; without one, every HTTP request is refused.
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._tasks: set[asyncio.Task[None]] = set()
        # In this process's memory unless the composition root shares them between replicas (Redis).
        dedupe = dedupe or LocalDedupe()
        self._seen_events = dedupe.seen_keys("slack-event", ttl_s=_DEDUPE_TTL_S, max_size=_DEDUPE_MAX)
        self._seen_messages = dedupe.seen_keys("slack-message", ttl_s=_DEDUPE_TTL_S, max_size=_DEDUPE_MAX)
        self._socket: AsyncSocketModeHandler | None = None
        self.app = AsyncApp(
            client=client,
            # handle_http checks every signature before anything is parsed: one check, not two.
            request_verification_enabled=False,
            name="wikibot",
            logger=_bolt_logger(),
        )
        self._app_id: str | None = None
        self.app.use(self._only_this_installation)
        self.app.use(self._drop_redelivered_events)
        for event_type in MESSAGE_EVENTS:
            self.app.event(event_type, middleware=[self._only_messages_for_the_bot])(self._on_message)
        self.app.event(HOME_OPENED)(self._on_home_opened)
        self.app.command(RESET_SLASH_COMMAND)(self._on_reset_command)
        self.app.action(FEEDBACK_ACTION)(self._on_feedback)

    # ---- transports

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """POST /slack/events: events, slash commands and url_verification, all signed by Slack."""
        try:
            body = await request.text()
        except UnicodeDecodeError:
            return web.json_response({"error": "body is not UTF-8"}, status=400)
        # The one signature check (Bolt's own is off), before anything of the body is parsed.
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

    # ---- middleware and listeners: no awaiting of slow work in here

    async def _only_this_installation(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """A correctly signed request for another workspace or app (a shared signing secret, a replay) is
        dropped: the bot answers only the workspace its token belongs to."""
        installed = context.authorize_result
        team, org, app = body.get("team_id"), body.get("enterprise_id"), body.get("api_app_id")
        foreign = ""
        if installed is not None and installed.team_id and isinstance(team, str) and team:
            foreign = team if team != installed.team_id else ""
        elif installed is not None and installed.enterprise_id and isinstance(org, str) and org:
            foreign = org if org != installed.enterprise_id else ""
        our_app = await self._own_app_id()
        if not foreign and our_app and isinstance(app, str) and app and app != our_app:
            foreign = app
        if foreign:
            log.warning("Slack: dropped a request for %s, which is not this installation", foreign[:40])
            return _handled()
        await next()
        return None

    async def _own_app_id(self) -> str:
        """This app's id, from auth.test once; empty (no app check) if Slack does not say."""
        if self._app_id is None:
            try:
                response = await self.client.auth_test()
            except SLACK_ERRORS as error:
                log.warning("Slack: auth.test failed, the app id check waits: %s", describe(error))
                return ""
            app_id = response.get("app_id")
            self._app_id = app_id if isinstance(app_id, str) else ""
        return self._app_id

    async def _drop_redelivered_events(
        self, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Slack redelivers an event it thinks we missed: the second copy is acknowledged and dropped."""
        event_id = body.get("event_id")
        if isinstance(event_id, str) and event_id and not await self._seen_events.add_if_new(event_id):
            log.info("Slack: dropped event %s, already handled", event_id)
            return _handled()
        await next()
        return None

    async def _only_messages_for_the_bot(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Lets through a user's message addressed to the bot, once: never its own, another bot's, an edit."""
        message = read_message(body, bot_user_id=context.bot_user_id or "", bot_id=context.bot_id or "")
        if message is None or not await self._addressed_to_bot(message):
            return _handled()
        # One message can arrive twice, as app_mention and as message.*, with different event ids.
        if not await self._seen_messages.add_if_new(message.dedupe_key):
            log.info("Slack: dropped %s for %s, already handled", message.event_type, message.dedupe_key)
            return _handled()
        context[_MESSAGE] = message
        await next()
        return None

    async def _on_message(self, context: AsyncBoltContext) -> None:
        self._spawn(self._respond(context[_MESSAGE]), name="slack-answer")

    async def _on_home_opened(self, event: dict[str, Any]) -> None:
        # Only the agent's Messages tab shows suggested prompts (the Home tab is off in the manifest).
        channel = event.get("channel")
        if event.get("tab") == "messages" and valid_id(channel):
            self._spawn(self._suggest(str(channel)), name="slack-suggestions")

    async def _on_feedback(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()  # at once: recording and thanking come after
        self._spawn(self._record_feedback(body), name="slack-feedback")

    async def _addressed_to_bot(self, message: InboundMessage) -> bool:
        conversation = message.conversation
        if conversation.is_dm or message.event_type == "app_mention":
            return True
        if message.mentions_bot:
            return False  # the same message's app_mention event is the one answered
        # A reply in a channel thread the bot takes part in continues without a mention, unless it speaks to
        # someone else.
        # The look-up comes last: a message that cannot be for the bot costs no round trip to a shared store.
        if conversation.thread_ts == message.ts or message.mentions_others:
            return False
        return await self._assistant.follows(conversation.session_key)

    async def _on_reset_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        # Bolt answers 404 to a command not acknowledged within 3 s: the core bounds a reset well below that.
        message = _reset_of_place(command)
        if message is None:
            text = core_texts.RESET_NO_PLACE
        else:
            try:
                text = (await self._assistant.ask(message)).text
            except Exception:
                log.exception("Slack: /wiki-reset failed")
                text = core_texts.RESET_FAILED
        await ack(text=render_notice(text).text, response_type="ephemeral")

    # ---- work after the ack

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.get_running_loop().create_task(_quietly(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(self, message: InboundMessage) -> None:
        recipient = Recipient(user_id=message.user_id, team_id=message.user_team_id)
        progress = SlackProgress(
            self.client, message.conversation, recipient=recipient, pace=self._pace, refusals=self._refusals
        )
        try:
            try:
                reply = await self._assistant.ask(_incoming(message), progress=progress)
            except Exception:
                log.exception("Slack: the assistant failed on %s", message.dedupe_key)
                reply = Reply.error(core_texts.FAILURE)
            await progress.finish(reply)
        except Exception:
            # Last resort: the task must end quietly whatever happened; the details go to the log only.
            log.exception("Slack: failed to respond to %s", message.dedupe_key)
        finally:
            progress.cancel()

    async def _record_feedback(self, body: dict[str, Any]) -> None:
        click = read_click(body)
        if click is None:
            log.warning("Slack: ignored a feedback click that is not one of ours")
            return
        feedback, channel, thread_ts = click
        recorded = await self._assistant.feedback(feedback)
        text = texts.FEEDBACK_THANKS if recorded else texts.FEEDBACK_LOST
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=feedback.user_id, text=text, thread_ts=thread_ts
            )
        except SLACK_ERRORS as error:
            log.warning("Slack: chat.postEphemeral in %s failed: %s", channel, describe(error))

    async def _suggest(self, channel: str) -> None:
        """The wiki's most useful pages as suggested prompts in the agent's Messages tab (none without a
        history to draw them from). Page titles are the wiki's words: plain text, and only that."""
        suggestions = await self._assistant.suggestions(limit=_MAX_SUGGESTIONS)
        prompts = [{"title": clean(s.title), "message": clean(s.message)} for s in suggestions]
        prompts = [p for p in prompts if p["title"].strip() and p["message"].strip()]
        if not prompts:
            return
        try:
            # No thread_ts: under the agent view a thread_ts is accepted, and nothing shows.
            await self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, title=texts.SUGGESTIONS_TITLE, prompts=prompts
            )
        except SLACK_ERRORS as error:
            log.warning(
                "Slack: assistant.threads.setSuggestedPrompts in %s failed: %s", channel, describe(error)
            )


async def _quietly(work: Coroutine[Any, Any, None], name: str) -> None:
    """Background work ends quietly whatever happens: a bug's traceback goes to the log, and nowhere else."""
    try:
        await work
    except Exception:
        log.exception("Slack: %s failed", name)


def _incoming(message: InboundMessage) -> IncomingMessage:
    conversation = message.conversation
    return IncomingMessage(
        session_key=conversation.session_key,
        text=message.text,
        user_id=message.user_id,
        platform="slack",
        place=Place(
            channel_prefix(conversation.team_id, conversation.channel_id), private=conversation.is_dm
        ),
        threaded=conversation.thread_ts is not None,
        has_files=message.has_files,
    )


def _reset_of_place(command: dict[str, Any]) -> IncomingMessage | None:
    """/wiki-reset speaks for the whole channel or DM it is typed in (Slack never sends one from a thread)."""
    team, channel, user = command.get("team_id"), command.get("channel_id"), command.get("user_id")
    if not (valid_id(team) and valid_id(channel) and valid_id(user)):
        return None
    team, channel, user = str(team), str(channel), str(user)
    return IncomingMessage(
        session_key="",
        text="reset",
        user_id=user,
        platform="slack",
        place=Place(channel_prefix(team, channel), private=is_dm_channel(channel)),
        scope=Scope.PLACE,
    )
