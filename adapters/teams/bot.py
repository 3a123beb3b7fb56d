"""The Teams bot: turns activities into IncomingMessage, answers in time or later, never in silence."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationReference

from adapters.redelivery import LocalDedupe
from adapters.teams.auth import scrub
from adapters.teams.replies import (
    WELCOME_TEXT,
    reply_activity,
    text_activity,
    typing_activity,
)
from adapters.teams.session import question_text, session_key
from adapters.teams.tasks import BackgroundTasks
from rag import texts
from rag.ports import Assistant, Dedupe
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
        sender = activity.from_property
        conversation_type = getattr(activity.conversation, "conversation_type", None)
        message = IncomingMessage(
            session_key=session_key(activity),
            text=_spelled_out(question_text(activity)),
            user_id=str(getattr(sender, "aad_object_id", None) or getattr(sender, "id", None) or ""),
            platform="teams",
            threaded=conversation_type == "channel",
            has_files=_has_files(activity),
        )
        answer = self._tasks.spawn(self._ask(message, _Typing(turn_context)))
        done, _ = await asyncio.wait({answer}, timeout=self._timing.reply_deadline_s)
        if answer in done:
            await turn_context.send_activity(reply_activity(answer.result()))
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

    async def _ask(self, message: IncomingMessage, progress: _Typing) -> Reply:
        try:
            return await self._assistant.ask(message, progress=progress)
        except Exception:  # a failed answer must still reach the user as a message
            _LOG.exception("teams: the assistant failed for session %s", message.session_key)
            return Reply.error(texts.FAILURE)

    async def _deliver_later(self, answer: asyncio.Task[Reply], reference: ConversationReference) -> None:
        typing = self._tasks.spawn(self._keep_typing(reference))
        try:
            reply = await answer
        finally:
            typing.cancel()
        await self._post(reference, reply_activity(reply))

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


class _Typing:
    """Teams' "working" signal: a typing indicator, sent when the core starts on a question."""

    def __init__(self, turn_context: TurnContext) -> None:
        self._turn_context = turn_context

    async def draft(self, text: str) -> None:
        pass  # the answer is sent whole when it is ready

    async def working(self) -> None:
        try:
            await self._turn_context.send_activity(typing_activity())
        except Exception as exc:  # a missing typing indicator must not cost the answer
            _LOG.debug("teams: typing indicator failed: %s", scrub(str(exc)))


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """Logs the failure (no token in it) and tells the user in one short line."""
    _LOG.error("teams: turn failed: %s: %s", type(error).__name__, scrub(str(error)))
    try:
        await turn_context.send_activity(text_activity(texts.FAILURE))
    except Exception as exc:  # the connector itself is failing; the log is all we have
        _LOG.error("teams: could not tell the user about the failure: %s", scrub(str(exc)))
