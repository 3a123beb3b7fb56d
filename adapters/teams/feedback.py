"""Teams' feedback buttons: the message a click names, and the click as the core's Feedback.

A click arrives as an `invoke` named `message/submitAction` whose `replyToId` is the bot's message, never our
answer id: the adapter tells the core which message carried which answer (`Assistant.delivered`) under the
`message_ref` below, and a click hands the same string back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from botbuilder.schema import Activity

from adapters.teams.session import THREAD_MARKER, user_id
from rag.types import Feedback, Rating

SUBMIT_ACTION = "message/submitAction"
_REACTIONS = {"like": Rating.UP, "dislike": Rating.DOWN}


def message_ref(conversation_id: str, activity_id: str) -> str:
    """`teams:<conversation>:<message id>`. A channel thread's `;messageid=<root>` is left out: message ids are
    unique in their channel already, and the click then matches whichever form of the id it carries."""
    return f"teams:{conversation_id.split(THREAD_MARKER, 1)[0]}:{activity_id}"


def feedback_of(activity: Activity) -> Feedback | None:
    """The rating a submitAction invoke carries, or None when it is not a feedback click we can place."""
    value = activity.value
    if not isinstance(value, Mapping) or value.get("actionName") != "feedback":
        return None
    action = value.get("actionValue")
    if not isinstance(action, Mapping):
        return None
    rating = _REACTIONS.get(str(action.get("reaction") or "").lower())
    conversation_id = str(getattr(activity.conversation, "id", "") or "")
    if rating is None or not activity.reply_to_id or not conversation_id:
        return None
    return Feedback(
        answer_id="",
        message_ref=message_ref(conversation_id, str(activity.reply_to_id)),
        rating=rating,
        user_id=user_id(activity),
        platform="teams",
        comment=_comment(action.get("feedback")),
    )


def _comment(raw: object) -> str:
    # Teams sends a JSON string ({"feedbackText": ...}), Web Chat an object; anything else is no comment.
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return str(raw)
    text = raw.get("feedbackText") if isinstance(raw, Mapping) else raw
    return text if isinstance(text, str) else ""
