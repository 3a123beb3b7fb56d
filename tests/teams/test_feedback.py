"""Feedback clicks as Teams and Web Chat send them, read into the core's Feedback: a table of payloads."""

from __future__ import annotations

from typing import Any

import pytest
from botbuilder.schema import Activity

from adapters.teams.feedback import feedback_of, message_ref
from rag.types import Rating

from .conftest import TENANT_ID

CHANNEL = "19:general0123456789@thread.tacv2"


def click(
    value: object, *, reply_to_id: str | None = "1700000000555", conversation_id: str = "a:1chat"
) -> Activity:
    payload: dict[str, Any] = {
        "type": "invoke",
        "name": "message/submitAction",
        "channelId": "msteams",
        "from": {"id": "29:alice", "aadObjectId": "aad-alice"},
        "conversation": {"id": conversation_id, "conversationType": "personal", "tenantId": TENANT_ID},
        "replyToId": reply_to_id,
        "value": value,
    }
    return Activity().deserialize(payload)


def action(reaction: object, feedback: object = None) -> dict[str, object]:
    return {"actionName": "feedback", "actionValue": {"reaction": reaction, "feedback": feedback}}


@pytest.mark.parametrize(
    ("value", "rating", "comment"),
    [
        pytest.param(
            action("like", '{"feedbackText":"Spot on"}'), Rating.UP, "Spot on", id="teams-json-string"
        ),
        pytest.param(action("dislike", '{"feedbackText":""}'), Rating.DOWN, "", id="teams-no-comment"),
        pytest.param(
            action("dislike", {"feedbackText": "Outdated"}), Rating.DOWN, "Outdated", id="webchat-object"
        ),
        pytest.param(
            action("Like", "not json, just words"), Rating.UP, "not json, just words", id="plain-text"
        ),
        pytest.param(action("like", '{"feedbackText": 42}'), Rating.UP, "", id="a-number-is-no-comment"),
        pytest.param(action("like"), Rating.UP, "", id="no-feedback-field"),
    ],
)
def test_a_click_becomes_a_rating_of_the_message_it_names(
    value: object, rating: Rating, comment: str
) -> None:
    feedback = feedback_of(click(value))

    assert feedback is not None
    assert (feedback.rating, feedback.comment) == (rating, comment)
    assert feedback.message_ref == "teams:a:1chat:1700000000555"
    assert (feedback.answer_id, feedback.user_id, feedback.platform) == ("", "aad-alice", "teams")


@pytest.mark.parametrize(
    ("value", "reply_to_id"),
    [
        pytest.param(action("love"), "1", id="unknown-reaction"),
        pytest.param({"actionName": "other", "actionValue": {"reaction": "like"}}, "1", id="another-action"),
        pytest.param({"actionName": "feedback", "actionValue": "like"}, "1", id="value-not-an-object"),
        pytest.param("like", "1", id="no-object-at-all"),
        pytest.param(action("like"), None, id="no-message-named"),
    ],
)
def test_what_is_not_a_placeable_click_is_none(value: object, reply_to_id: str | None) -> None:
    assert feedback_of(click(value, reply_to_id=reply_to_id)) is None


def test_a_channel_thread_message_is_named_the_same_with_or_without_its_thread() -> None:
    assert message_ref(f"{CHANNEL};messageid=1700000000777", "1700000000888") == message_ref(
        CHANNEL, "1700000000888"
    )
    assert message_ref(CHANNEL, "1") != message_ref(CHANNEL, "2")
    assert message_ref("a:1chat", "1") != message_ref("a:2chat", "1")
