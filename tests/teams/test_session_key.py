"""Session keys are a pure function of the activity: one session per chat or channel thread, per tenant."""

from __future__ import annotations

from typing import Any

import pytest
from botbuilder.schema import Activity

from adapters.teams.session import question_text, session_key

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CHANNEL = "19:a1b2c3d4e5f6@thread.tacv2"


def activity(conversation: dict[str, Any], **extra: Any) -> Activity:
    payload = {
        "type": "message",
        "id": "1700000000999",
        "channelId": "msteams",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "from": {"id": "29:alice", "aadObjectId": "aad-alice"},
        "recipient": {"id": "28:bot", "name": "WikiBot"},
        "conversation": conversation,
        "text": "hello",
        **extra,
    }
    return Activity().deserialize(payload)


CASES = [
    pytest.param(
        {"id": "a:1Xyz-personal", "conversationType": "personal", "tenantId": TENANT},
        {},
        f"teams:{TENANT}:a:1Xyz-personal",
        id="personal chat",
    ),
    pytest.param(
        {"id": f"{CHANNEL};messageid=1700000000123", "conversationType": "channel", "tenantId": TENANT},
        {"replyToId": "1700000000123"},
        f"teams:{TENANT}:{CHANNEL};messageid=1700000000123",
        id="channel thread reply",
    ),
    pytest.param(
        {"id": f"{CHANNEL};messageid=1700000000999", "conversationType": "channel", "tenantId": TENANT},
        {},
        f"teams:{TENANT}:{CHANNEL};messageid=1700000000999",
        id="channel root post mentioning the bot",
    ),
    pytest.param(
        {"id": CHANNEL, "conversationType": "channel", "tenantId": TENANT},
        {"replyToId": "1700000000555"},
        f"teams:{TENANT}:{CHANNEL};messageid=1700000000555",
        id="channel activity without the thread marker keys by its root",
    ),
    pytest.param(
        {"id": "19:meeting-or-group@thread.v2", "conversationType": "groupChat", "tenantId": TENANT},
        {},
        f"teams:{TENANT}:19:meeting-or-group@thread.v2",
        id="group chat",
    ),
    pytest.param(
        {"id": "a:1Xyz-personal", "conversationType": "personal"},
        {"channelData": {"tenant": {"id": "other-tenant"}}},
        "teams:other-tenant:a:1Xyz-personal",
        id="tenant only in channelData",
    ),
    pytest.param(
        {"id": "emulator-conv-1"},
        {"channelId": "emulator"},
        "teams:-:emulator-conv-1",
        id="emulator without tenant",
    ),
]


@pytest.mark.parametrize(("conversation", "extra", "expected"), CASES)
def test_session_key(conversation: dict[str, Any], extra: dict[str, Any], expected: str) -> None:
    assert session_key(activity(conversation, **extra)) == expected


def test_two_threads_of_one_channel_never_share_a_session() -> None:
    first = activity({"id": f"{CHANNEL};messageid=1", "conversationType": "channel", "tenantId": TENANT})
    second = activity({"id": f"{CHANNEL};messageid=2", "conversationType": "channel", "tenantId": TENANT})
    assert session_key(first) != session_key(second)


def test_same_conversation_id_in_two_tenants_never_shares_a_session() -> None:
    one = activity({"id": "a:1same", "conversationType": "personal", "tenantId": "tenant-a"})
    two = activity({"id": "a:1same", "conversationType": "personal", "tenantId": "tenant-b"})
    assert session_key(one) != session_key(two)


def mention_entity(name: str, member_id: str = "28:bot") -> dict[str, Any]:
    return {"type": "mention", "text": f"<at>{name}</at>", "mentioned": {"id": member_id, "name": name}}


@pytest.mark.parametrize(
    ("text", "entities", "expected"),
    [
        (
            "<at>WikiBot</at> How do I get VPN access?",
            [mention_entity("WikiBot")],
            "How do I get VPN access?",
        ),
        ("<at>WikiBot</at> reset", [mention_entity("WikiBot")], "reset"),
        (
            "<at>WikiBot</at> ask <at>Bob</at> about &quot;VPN&quot;",
            [mention_entity("WikiBot"), mention_entity("Bob", "29:bob")],
            'ask Bob about "VPN"',
        ),
        ("How do I get VPN access?", [], "How do I get VPN access?"),
        ("<at>WikiBot</at>   ", [mention_entity("WikiBot")], ""),
        # A malformed mention entity is untrusted input: the question survives it.
        ("<at>WikiBot</at> VPN?", [{"type": "mention", "text": "<at>WikiBot</at>"}], "VPN?"),
    ],
)
def test_question_text_drops_the_bot_mention(
    text: str, entities: list[dict[str, Any]], expected: str
) -> None:
    incoming = activity({"id": "c", "conversationType": "channel"}, text=text, entities=entities)
    assert question_text(incoming) == expected
