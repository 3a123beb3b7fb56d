"""Conversations through the real botbuilder stack, signed by the loopback identity provider."""

from __future__ import annotations

import asyncio

import pytest

from rag import texts

from .conftest import APP_ID, BOT_ACCOUNT, GROUP_CHAT, TENANT_ID, TeamsBot
from .connector_fake import ConnectorFake
from .fake_assistant import VPN_PAGE, FakeAssistant
from .identity_provider import BOTFRAMEWORK_HOST, MICROSOFT_LOGIN_HOST

CHANNEL = "19:general0123456789@thread.tacv2"


def mention(name: str = "WikiBot") -> dict[str, object]:
    return {
        "type": "mention",
        "text": f"<at>{name}</at>",
        "mentioned": {"id": BOT_ACCOUNT["id"], "name": name},
    }


async def test_personal_message_gets_an_answer_with_a_cited_page_link(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    sent = await teams.send(teams.activity("How do I get VPN access?"))

    assert sent.status in (200, 201)
    [reply] = await connector.wait_for_messages(1)
    assert f"({VPN_PAGE.url})" in reply.text
    assert "[1]" in reply.text
    assert reply.activity["textFormat"] == "markdown"
    [citation_entity] = [e for e in reply.activity["entities"] if e["type"] == "https://schema.org/Message"]
    [claim] = citation_entity["citation"]
    assert claim["position"] == 1
    assert claim["appearance"]["url"] == VPN_PAGE.url
    assert reply.conversation_id == "a:1personal-chat-alice"
    assert assistant.received[0].session_key == f"teams:{TENANT_ID}:a:1personal-chat-alice"
    assert assistant.received[0].platform == "teams"
    # The reply carries a token the identity provider issued to this bot, fetched through the proxy.
    scheme, _, token = reply.authorization.partition(" ")
    assert scheme == "Bearer" and token in teams.identity.provider.log.issued_access_tokens
    assert MICROSOFT_LOGIN_HOST in teams.identity.proxy.hosts_connected()
    assert BOTFRAMEWORK_HOST in teams.identity.proxy.hosts_connected()


async def test_channel_mention_is_answered_in_its_thread_without_the_mention_text(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    thread = {
        "id": f"{CHANNEL};messageid=1700000000777",
        "conversationType": "channel",
        "tenantId": TENANT_ID,
    }
    activity = teams.activity(
        "<at>WikiBot</at> How do I get VPN access?",
        conversation=thread,
        activity_id="1700000000777",
        entities=[mention()],
    )

    await teams.send(activity)

    [reply] = await connector.wait_for_messages(1)
    assert reply.conversation_id == f"{CHANNEL};messageid=1700000000777"
    assert reply.reply_to_id == "1700000000777"
    assert assistant.received[0].text == "How do I get VPN access?"


async def test_follow_up_uses_history_and_reset_forgets_it(teams: TeamsBot, connector: ConnectorFake) -> None:
    await teams.send(teams.activity("How do I get VPN access?", activity_id="m1"))
    await teams.send(teams.activity("And on Linux?", activity_id="m2"))
    await teams.send(teams.activity("reset", activity_id="m3"))
    await teams.send(teams.activity("And on Linux?", activity_id="m4"))

    first, follow_up, confirmation, after_reset = await connector.wait_for_messages(4)
    assert "No earlier questions" in first.text
    assert "Earlier you asked: How do I get VPN access?" in follow_up.text
    assert confirmation.text == texts.RESET_SESSION
    assert "No earlier questions" in after_reset.text


async def test_wiki_reset_typed_as_text_also_resets(teams: TeamsBot, connector: ConnectorFake) -> None:
    await teams.send(teams.activity("How do I get VPN access?", activity_id="m1"))
    await teams.send(teams.activity("/wiki-reset", activity_id="m2"))
    await teams.send(teams.activity("And on Linux?", activity_id="m3"))

    _, confirmation, after_reset = await connector.wait_for_messages(3)
    assert confirmation.text == texts.RESET_SESSION
    assert "No earlier questions" in after_reset.text


async def test_each_channel_thread_is_its_own_session(teams: TeamsBot, connector: ConnectorFake) -> None:
    for root in ("1700000000100", "1700000000200"):
        thread = {"id": f"{CHANNEL};messageid={root}", "conversationType": "channel", "tenantId": TENANT_ID}
        await teams.send(
            teams.activity(
                "<at>WikiBot</at> VPN?", conversation=thread, activity_id=root, entities=[mention()]
            )
        )

    replies = await connector.wait_for_messages(2)
    assert all("No earlier questions" in r.text for r in replies)


async def test_bot_added_to_a_team_posts_a_welcome_to_the_channel(
    teams: TeamsBot, connector: ConnectorFake
) -> None:
    update = teams.activity(
        "", conversation={"id": CHANNEL, "conversationType": "channel", "tenantId": TENANT_ID}
    )
    update.update({"type": "conversationUpdate", "membersAdded": [BOT_ACCOUNT], "text": None})

    sent = await teams.send(update)

    assert sent.status in (200, 201)
    [welcome] = await connector.wait_for_messages(1)
    assert welcome.conversation_id == CHANNEL
    assert welcome.reply_to_id is None
    assert "reset" in welcome.text and "wiki" in welcome.text.lower()


async def test_a_user_joining_gets_no_welcome(teams: TeamsBot, connector: ConnectorFake) -> None:
    update = teams.activity(
        "", conversation={"id": CHANNEL, "conversationType": "channel", "tenantId": TENANT_ID}
    )
    update.update({"type": "conversationUpdate", "membersAdded": [{"id": "29:bob"}], "text": None})

    sent = await teams.send(update)

    assert sent.status in (200, 201)
    await asyncio.sleep(0.3)
    assert connector.messages() == []


async def test_slow_model_returns_the_request_in_time_and_the_answer_still_arrives(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    assistant.delay_s = 10.0

    sent = await teams.send(teams.activity("How do I get VPN access?", conversation=GROUP_CHAT))

    # The Bot Framework gives up on a request after 15 s; the turn hands over well before.
    assert sent.status in (200, 201)
    assert sent.elapsed_s < 8.0
    assert connector.messages() == []
    [reply] = await connector.wait_for_messages(1, timeout=15.0)
    assert f"({VPN_PAGE.url})" in reply.text
    assert reply.conversation_id == GROUP_CHAT["id"]
    assert len(connector.typing()) >= 2  # the indicator is renewed while the user waits
    assert connector.stream_updates() == []


async def test_a_slow_answer_in_a_personal_chat_keeps_its_stream_open_past_the_turn(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    assistant.delay_s = 7.0

    sent = await teams.send(teams.activity("How do I get VPN access?"))

    assert sent.status in (200, 201) and sent.elapsed_s < 7.0
    [reply] = await connector.wait_for_messages(1, timeout=15.0)
    # The stream's informative update is the indicator: no typing renewals over it, and the answer,
    # posted after the turn, ends that same stream.
    [informative] = connector.typing()
    assert informative.stream_info == {"type": "streaminfo", "streamType": "informative", "streamSequence": 1}
    assert informative.text == "Looking through the wiki…"
    assert reply.stream_info == {"type": "streaminfo", "streamType": "final", "streamId": informative.id}
    assert f"({VPN_PAGE.url})" in reply.text
    assert connector.refused == []


async def test_outbound_token_is_reused_between_turns(teams: TeamsBot, connector: ConnectorFake) -> None:
    token_requests = teams.identity.provider.log.token_requests
    before = len(token_requests)

    for n in range(3):
        await teams.send(teams.activity(f"question {n}", activity_id=f"m{n}"))
    await connector.wait_for_messages(3)

    # Three turns, each with a typing indicator and an answer: one token request in all.
    assert [r.form.get("client_id") for r in token_requests[before:]] == [APP_ID]
    assert len({p.authorization for p in connector.posted}) == 1


async def test_help_describes_the_bot(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    await teams.send(teams.activity("help"))

    [reply] = await connector.wait_for_messages(1)
    assert "wiki" in reply.text.lower() and "reset" in reply.text
    assert assistant.answerer.questions == []


THREAD = {"id": f"{CHANNEL};messageid=1700000000888", "conversationType": "channel", "tenantId": TENANT_ID}
# Teams attaches an HTML copy of many messages, a bare mention included: that is not a file.
HTML_COPY = {"contentType": "text/html", "content": "<div><at>WikiBot</at></div>"}
PICTURE = {"contentType": "image/png", "contentUrl": "https://example.com/screen.png"}


@pytest.mark.parametrize(
    ("text", "attachment", "in_thread", "expected"),
    [
        pytest.param("<at>WikiBot</at>", HTML_COPY, True, texts.HELP, id="bare-mention-gets-the-help"),
        pytest.param("", PICTURE, False, texts.FILE_ONLY, id="picture-gets-told-only-text-is-read"),
    ],
)
async def test_a_message_without_a_question_gets_a_notice_and_asks_nothing(
    teams: TeamsBot,
    connector: ConnectorFake,
    assistant: FakeAssistant,
    text: str,
    attachment: dict[str, str],
    in_thread: bool,
    expected: str,
) -> None:
    activity = teams.activity(
        text, conversation=THREAD if in_thread else None, entities=[mention()] if in_thread else None
    )
    activity["attachments"] = [attachment]
    await teams.send(activity)

    [reply] = await connector.wait_for_messages(1)
    assert reply.text == expected
    assert assistant.answerer.questions == []


async def test_a_failing_core_becomes_a_short_human_message(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    assistant.fail_with = RuntimeError("database is locked")

    sent = await teams.send(teams.activity("How do I get VPN access?"))

    assert sent.status == 201
    [reply] = await connector.wait_for_messages(1)
    assert reply.text.startswith("Sorry")
    assert "database" not in reply.text and "Traceback" not in reply.text


async def test_a_redelivered_activity_is_answered_once(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    activity = teams.activity("How do I get VPN access?", activity_id="same-id")
    await teams.send(activity)
    await teams.send(activity)

    await connector.wait_for_messages(1)
    await asyncio.sleep(0.3)
    assert len(connector.messages()) == 1
    assert len(assistant.received) == 1


async def test_a_failing_connector_does_not_break_the_endpoint(
    teams: TeamsBot, connector: ConnectorFake
) -> None:
    connector.fail_status = 503
    sent = await teams.send(teams.activity("How do I get VPN access?", activity_id="a1"))
    assert sent.status == 201

    connector.fail_status = None
    await teams.send(teams.activity("How do I get VPN access?", activity_id="a2"))
    [reply] = await connector.wait_for_messages(1)
    assert f"({VPN_PAGE.url})" in reply.text


async def test_a_slow_token_endpoint_does_not_stall_the_event_loop(
    teams: TeamsBot, connector: ConnectorFake
) -> None:
    # The first turn of a fresh endpoint fetches the bot's outbound token: a blocking msal call.
    gaps: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.02)
            now = loop.time()
            gaps.append(now - last)
            last = now

    teams.identity.provider.delay_s = 0.6
    ticking = asyncio.create_task(ticker())
    try:
        await teams.send(teams.activity("How do I get VPN access?"))
        await connector.wait_for_messages(1)
    finally:
        teams.identity.provider.delay_s = 0.0
        ticking.cancel()

    assert max(gaps) < 0.3
