"""👍/👎 under an answer: the block that shows them, and a click read back into the core's Feedback.

The buttons carry the answer's id (Reply.answer_id) and the rating in their value, so a click names the answer
by itself: nothing to look up, on this replica or another.
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import ContextActionsBlock, FeedbackButtonObject, FeedbackButtonsElement

from adapters.slack import texts
from adapters.slack.sessions import valid_id
from rag.types import Feedback, Rating

FEEDBACK_ACTION = "wikibot_feedback"
# An answer id as the question log writes it; anything else in a click is not ours.
_ANSWER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def feedback_block(answer_id: str) -> dict[str, Any]:
    """A context_actions block with Slack's feedback buttons for one answer."""

    def button(rating: Rating, text: str, label: str) -> FeedbackButtonObject:
        return FeedbackButtonObject(text=text, accessibility_label=label, value=f"{rating.value}:{answer_id}")

    element = FeedbackButtonsElement(
        action_id=FEEDBACK_ACTION,
        positive_button=button(Rating.UP, texts.FEEDBACK_UP, texts.FEEDBACK_UP_LABEL),
        negative_button=button(Rating.DOWN, texts.FEEDBACK_DOWN, texts.FEEDBACK_DOWN_LABEL),
    )
    return ContextActionsBlock(elements=[element]).to_dict()


def read_click(body: dict[str, Any]) -> tuple[Feedback, str, str | None] | None:
    """The Feedback a block_actions payload gives, the channel to thank the user in and the thread there (None
    at the top level); None for a click that is not a well-formed one on our buttons."""
    actions, user, channel, message = (body.get(k) for k in ("actions", "user", "channel", "message"))
    if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
        return None
    if not (isinstance(user, dict) and isinstance(channel, dict)):
        return None
    rating, _, answer_id = str(actions[0].get("value", "")).partition(":")
    user_id, channel_id = user.get("id"), channel.get("id")
    if rating not in {r.value for r in Rating} or not _ANSWER_ID.match(answer_id):
        return None
    if not (valid_id(user_id) and valid_id(channel_id)):
        return None
    thread_ts = message.get("thread_ts") if isinstance(message, dict) else None
    feedback = Feedback(answer_id=answer_id, rating=Rating(rating), user_id=str(user_id), platform="slack")
    return feedback, str(channel_id), thread_ts if isinstance(thread_ts, str) and thread_ts else None
