"""The Teams bot: turns activities into IncomingMessage, answers in time or later, never in silence."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationReference

from adapters.teams.auth import scrub
from adapters.teams.replies import (
    EMPTY_TEXT,
    FAILURE_TEXT,
    RESET_TEXT,
    WELCOME_TEXT,
    answer_activity,
    text_activity,
    typing_activity,
)
from adapters.teams.session import question_text, session_key
from adapters.teams.tasks import BackgroundTasks
from rag.commands import HELP_TEXT, Command, parse_command
from rag.ports import Assistant
from rag.types import IncomingMessage, Reply

_LOG = logging.getLogger(__name__)
_RECENT_ACTIVITIES = 512


@dataclass(frozen=True, slots=True)
class Timing:
    # The Bot Framework gives a bot about 15 s to answer the HTTP request; a reply posted inside the turn
    # must be sent well before that, so slower answers are posted proactively after the turn ends.
    reply_deadline_s: float = 5.0
    # Teams hides a typing indicator after a few seconds unless it is renewed.
    typing_interval_s: float = 3.0


class WikiTeamsBot(ActivityHandler):  # type: ignore[misc]
    def __init__(
        self,
        *,
        assistant: Assistant,
        adapter: CloudAdapter,
        app_id: str,
        tasks: BackgroundTasks,
        timing: Timing | None = None,
    ) -> None:
        super().__init__()
        self._assistant = assistant
        self._adapter = adapter
        self._app_id = app_id
        self._tasks = tasks
        self._timing = timing or Timing()
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity: Activity = turn_context.activity
        if self._is_redelivery(activity):
            return
        key = session_key(activity)
        text = question_text(activity)
        command = parse_command(text)
        if command is Command.RESET:
            await self._assistant.reset(key)
            await turn_context.send_activity(text_activity(RESET_TEXT))
            return
        if command is Command.HELP:
            await turn_context.send_activity(text_activity(HELP_TEXT))
            return
        if not text:
            await turn_context.send_activity(text_activity(EMPTY_TEXT))
            return

        await self._send_typing(turn_context)
        sender = activity.from_property
        message = IncomingMessage(
            session_key=key,
            text=text,
            user_id=str(getattr(sender, "aad_object_id", None) or getattr(sender, "id", None) or ""),
            platform="teams",
        )
        answer = self._tasks.spawn(self._ask(message))
        done, _ = await asyncio.wait({answer}, timeout=self._timing.reply_deadline_s)
        if answer in done:
            await turn_context.send_activity(answer_activity(answer.result()))
            return
        # Too slow for this HTTP request: finish the turn now and post the answer when it is ready.
        reference = TurnContext.get_conversation_reference(activity)
        self._tasks.spawn(self._deliver_later(answer, reference))

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

    async def _ask(self, message: IncomingMessage) -> Reply:
        try:
            return await self._assistant.ask(message)
        except Exception:  # a failed answer must still reach the user as a message
            _LOG.exception("teams: the assistant failed for session %s", message.session_key)
            return Reply(text=FAILURE_TEXT, grounded=False, mode="error")

    async def _deliver_later(self, answer: asyncio.Task[Reply], reference: ConversationReference) -> None:
        typing = self._tasks.spawn(self._keep_typing(reference))
        try:
            reply = await answer
        finally:
            typing.cancel()
        await self._post(reference, answer_activity(reply))

    async def _keep_typing(self, reference: ConversationReference) -> None:
        while True:
            await self._post(reference, typing_activity())
            await asyncio.sleep(self._timing.typing_interval_s)

    async def _post(self, reference: ConversationReference, outgoing: Activity) -> None:
        async def send(context: TurnContext) -> None:
            await context.send_activity(outgoing)

        try:
            await self._adapter.continue_conversation(reference, send, self._app_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # nobody is waiting on this task to hear about it
            _LOG.error(
                "teams: could not post a %s to conversation %s: %s",
                outgoing.type,
                scrub(str(getattr(reference.conversation, "id", "?"))),
                scrub(str(exc)),
            )

    async def _send_typing(self, turn_context: TurnContext) -> None:
        try:
            await turn_context.send_activity(typing_activity())
        except Exception as exc:  # a missing typing indicator must not cost the answer
            _LOG.debug("teams: typing indicator failed: %s", scrub(str(exc)))

    def _is_redelivery(self, activity: Activity) -> bool:
        """True for an activity already handled: the Bot Framework retries when it thinks we were slow."""
        conversation_id = getattr(activity.conversation, "id", None)
        if not activity.id or not conversation_id:
            return False
        key = (str(conversation_id), str(activity.id))
        if key in self._recent:
            return True
        self._recent[key] = None
        while len(self._recent) > _RECENT_ACTIVITIES:
            self._recent.popitem(last=False)
        return False


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """Logs the failure (no token in it) and tells the user in one short line."""
    _LOG.error("teams: turn failed: %s: %s", type(error).__name__, scrub(str(error)))
    try:
        await turn_context.send_activity(text_activity(FAILURE_TEXT))
    except Exception as exc:  # the connector itself is failing; the log is all we have
        _LOG.error("teams: could not tell the user about the failure: %s", scrub(str(exc)))
