"""The Teams bot: turns activities into IncomingMessage, answers in time or later, never in silence.

A personal chat streams the answer as the model writes it (`streaming.py`); group chats and channels, where
Teams does not stream, see a typing indicator and one final message. Either way the HTTP request ends within
`reply_deadline_s`: the Bot Framework gives up on it after about 15 s whatever is streaming, so the deadline
only decides whether the final message goes inside the turn or proactively. Stream updates go out as the
model writes, inside the turn while it is open and proactively after it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationReference, ResourceResponse

from adapters.redelivery import LocalDedupe
from adapters.teams.auth import scrub
from adapters.teams.feedback import SUBMIT_ACTION, feedback_of, message_ref
from adapters.teams.replies import (
    WELCOME_TEXT,
    reply_activity,
    text_activity,
    typing_activity,
)
from adapters.teams.session import question_text, session_key, user_id
from adapters.teams.streaming import Send, TeamsStream
from adapters.teams.tasks import BackgroundTasks
from rag import texts
from rag.ports import Assistant, Dedupe, Progress
from rag.types import IncomingMessage, Reply

_LOG = logging.getLogger(__name__)
RESET_SLASH_WORD = "/wiki-reset"
# The Bot Framework retries a turn it thinks timed out within seconds; an hour covers it with room to spare.
_REDELIVERY_TTL_S = 3600.0
_RECENT_ACTIVITIES = 20_000


@dataclass(frozen=True, slots=True)
class Timing:
    # The Bot Framework gives a bot about 15 s to answer the HTTP request; a reply posted inside the turn
    # must be sent well before that, so slower answers are posted proactively after the turn ends.
    reply_deadline_s: float = 5.0
    # Teams hides a typing indicator after a few seconds unless it is renewed.
    typing_interval_s: float = 3.0
    # Teams throttles stream updates sent faster than this (it asks for 1.5 to 2 s between them).
    stream_interval_s: float = 1.5
    # Teams refuses a stream after two minutes: ended before, with time left for its final message.
    stream_limit_s: float = 100.0


class WikiTeamsBot(ActivityHandler):  # type: ignore[misc]
    def __init__(
        self,
        *,
        assistant: Assistant,
        adapter: CloudAdapter,
        app_id: str,
        tasks: BackgroundTasks,
        timing: Timing | None = None,
        dedupe: Dedupe | None = None,
    ) -> None:
        super().__init__()
        self._assistant = assistant
        self._adapter = adapter
        self._app_id = app_id
        self._tasks = tasks
        self._timing = timing or Timing()
        # In this process's memory unless the composition root shares it between replicas (Redis).
        self._recent = (dedupe or LocalDedupe()).seen_keys(
            "teams-activity", ttl_s=_REDELIVERY_TTL_S, max_size=_RECENT_ACTIVITIES
        )

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity: Activity = turn_context.activity
        if await self._is_redelivery(activity):
            return
        conversation_type = getattr(activity.conversation, "conversation_type", None)
        message = IncomingMessage(
            session_key=session_key(activity),
            text=_spelled_out(question_text(activity)),
            user_id=user_id(activity),
            platform="teams",
            threaded=conversation_type == "channel",
            has_files=_has_files(activity),
        )
        reference = TurnContext.get_conversation_reference(activity)
        outbox = _Outbox(turn_context, lambda outgoing: self._send_later(reference, outgoing))
        delivery = self._delivery(conversation_type, outbox.send)
        answer = self._tasks.spawn(self._ask(message, delivery))
        try:
            done, _ = await asyncio.wait({answer}, timeout=self._timing.reply_deadline_s)
            if answer in done:
                await self._deliver(answer.result(), delivery, reference)
                return
        finally:
            outbox.turn_ended()
        # Too slow for this HTTP request: finish the turn now and post the answer when it is ready.
        self._tasks.spawn(self._deliver_later(answer, reference, delivery))

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        activity: Activity = turn_context.activity
        if activity.name != SUBMIT_ACTION:
            return await super().on_invoke_activity(turn_context)
        feedback = feedback_of(activity)
        if feedback is None:
            _LOG.info("teams: a submitAction that is not a feedback click; ignored")
        elif not await self._assistant.feedback(feedback):
            # An old message, one sent while the question log was off, or another bot's: nothing to rate.
            _LOG.info("teams: feedback on a message that is no logged answer; ignored")
        # Teams refuses any body in the answer to a submitAction (routes.py sends none for a None body).
        return InvokeResponse(status=200)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        activity: Activity = turn_context.activity
        bot_id = getattr(activity.recipient, "id", None)
        if not bot_id or not any(getattr(member, "id", None) == bot_id for member in members_added or []):
            return
        # A welcome goes to the conversation itself (a new channel post), not as a reply to the event.
        reference = TurnContext.get_conversation_reference(activity)
        reference.activity_id = None
        welcome = TurnContext.apply_conversation_reference(text_activity(WELCOME_TEXT), reference)
        await turn_context.adapter.send_activities(turn_context, [welcome])

    def _delivery(self, conversation_type: str | None, send: Send) -> _Delivery:
        if conversation_type == "personal":
            return TeamsStream(
                send=send,
                spawn=self._tasks.spawn,
                interval_s=self._timing.stream_interval_s,
                limit_s=self._timing.stream_limit_s,
            )
        return _Typing(send)

    async def _ask(self, message: IncomingMessage, progress: Progress) -> Reply:
        try:
            return await self._assistant.ask(message, progress=progress)
        except Exception:  # a failed answer must still reach the user as a message
            _LOG.exception("teams: the assistant failed for session %s", message.session_key)
            return Reply.error(texts.FAILURE)

    async def _deliver(self, reply: Reply, delivery: _Delivery, reference: ConversationReference) -> None:
        message_id = await delivery.finish(reply_activity(reply))
        if reply.answer_id and message_id:
            conversation_id = str(getattr(reference.conversation, "id", "") or "")
            await self._assistant.delivered(reply.answer_id, message_ref(conversation_id, message_id))

    async def _deliver_later(
        self, answer: asyncio.Task[Reply], reference: ConversationReference, delivery: _Delivery
    ) -> None:
        typing = self._tasks.spawn(self._keep_typing(reference, delivery))
        try:
            reply = await answer
        finally:
            typing.cancel()
        try:
            await self._deliver(reply, delivery, reference)
        except Exception as exc:  # nobody is waiting on this task to hear about it
            self._log_lost("message", reference, exc)

    async def _keep_typing(self, reference: ConversationReference, delivery: _Delivery) -> None:
        while True:
            if not delivery.streaming:  # an open stream is the indicator itself
                await self._post(reference, typing_activity())
            await asyncio.sleep(self._timing.typing_interval_s)

    async def _send_later(self, reference: ConversationReference, outgoing: Activity) -> str | None:
        """Sends proactively, after the turn; the id the connector answered with. Raises what the SDK raises."""
        sent: list[ResourceResponse | None] = []

        async def send(context: TurnContext) -> None:
            sent.append(await context.send_activity(outgoing))

        await self._adapter.continue_conversation(reference, send, self._app_id)
        return _sent_id(sent[0] if sent else None)

    async def _post(self, reference: ConversationReference, outgoing: Activity) -> None:
        try:
            await self._send_later(reference, outgoing)
        except Exception as exc:  # nobody is waiting on this task to hear about it
            self._log_lost(str(outgoing.type), reference, exc)

    @staticmethod
    def _log_lost(what: str, reference: ConversationReference, exc: Exception) -> None:
        _LOG.error(
            "teams: could not post a %s to conversation %s: %s",
            what,
            scrub(str(getattr(reference.conversation, "id", "?"))),
            scrub(str(exc)),
        )

    async def _is_redelivery(self, activity: Activity) -> bool:
        """True for an activity already handled: the Bot Framework retries when it thinks we were slow."""
        conversation_id = getattr(activity.conversation, "id", None)
        if not activity.id or not conversation_id:
            return False
        return not await self._recent.add_if_new(f"{conversation_id}\n{activity.id}")


def _has_files(activity: Activity) -> bool:
    # Teams attaches a text/html copy of many plain messages (a bare mention included): that is not a file.
    return any(getattr(a, "content_type", "") != "text/html" for a in activity.attachments or [])


def _spelled_out(text: str) -> str:
    # The welcome names Slack's /wiki-reset too, as people move between both apps: typed here, it is a reset.
    return "reset" if text.strip().lower() == RESET_SLASH_WORD else text


class _Delivery(Progress, Protocol):
    """How one answer reaches its chat: the core's progress while it is written, then its final message."""

    @property
    def streaming(self) -> bool: ...

    async def finish(self, final: Activity) -> str | None:
        """Sends the final message; the id of the message that shows it. Raises when it cannot be sent."""
        ...


class _Outbox:
    """Sends one answer's activities: through the turn while its HTTP request is open, proactively after."""

    def __init__(self, turn_context: TurnContext, later: Send) -> None:
        self._turn_context: TurnContext | None = turn_context
        self._later = later

    def turn_ended(self) -> None:
        self._turn_context = None

    async def send(self, activity: Activity) -> str | None:
        if self._turn_context is None:
            return await self._later(activity)
        return _sent_id(await self._turn_context.send_activity(activity))


def _sent_id(response: ResourceResponse | None) -> str | None:
    return str(response.id) if response is not None and response.id else None


class _Typing:
    """Group chats and channels, where Teams does not stream: a typing indicator, then one final message."""

    streaming = False

    def __init__(self, send: Send) -> None:
        self._send = send

    async def draft(self, text: str) -> None:
        pass  # the answer is sent whole when it is ready

    async def working(self) -> None:
        try:
            await self._send(typing_activity())
        except Exception as exc:  # a missing typing indicator must not cost the answer
            _LOG.debug("teams: typing indicator failed: %s", scrub(str(exc)))

    async def finish(self, final: Activity) -> str | None:
        return await self._send(final)


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """Logs the failure (no token in it) and tells the user in one short line."""
    _LOG.error("teams: turn failed: %s: %s", type(error).__name__, scrub(str(error)))
    try:
        await turn_context.send_activity(text_activity(texts.FAILURE))
    except Exception as exc:  # the connector itself is failing; the log is all we have
        _LOG.error("teams: could not tell the user about the failure: %s", scrub(str(exc)))
