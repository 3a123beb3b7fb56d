"""Socket Mode: the server dials out (apps.connections.open, then the WebSocket), acks envelopes, answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest

from adapters.slack import texts
from rag import texts as core_texts

from .fake_slack import FakeSlack
from .fake_slack_assistant import PAGE, FakeAssistant
from .slack_harness import SlackServer
from .slack_payloads import ALICE, CHANNEL, DM, dm, envelope, mention, slash_command


@pytest.fixture
async def socket_slack(fake_slack: FakeSlack, assistant: FakeAssistant) -> AsyncIterator[SlackServer]:
    server = SlackServer(fake_slack, assistant, socket_mode=True)
    await server.start()
    await fake_slack.wait_for(lambda: fake_slack.socket_connections, timeout=10)
    yield server
    await server.close()


async def test_the_app_connects_acks_an_envelope_and_answers_in_the_thread(
    socket_slack: SlackServer, fake_slack: FakeSlack
):
    assert [call.ok for call in fake_slack.calls_of("apps.connections.open")] == [True]
    event = mention("how do I deploy?")

    envelope_id = await fake_slack.send_envelope("events_api", envelope(event))

    await fake_slack.wait_for(lambda: envelope_id in fake_slack.socket_acks)
    reply = await fake_slack.wait_for(
        lambda: [m for m in fake_slack.in_thread(CHANNEL, event["ts"]) if m.text != texts.WORKING]
    )
    assert PAGE.url in reply[0].everything


async def test_a_redelivered_envelope_is_answered_once(
    socket_slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    body = envelope(dm("vpn?"))

    first = await fake_slack.send_envelope("events_api", body)
    second = await fake_slack.send_envelope("events_api", body)

    await fake_slack.wait_for(lambda: {first, second} <= fake_slack.socket_acks.keys())
    await fake_slack.wait_for(lambda: [m for m in fake_slack.in_thread(DM, None) if m.text != texts.WORKING])
    await socket_slack.bot.wait_idle()
    assert len(assistant.asked) == 1


async def test_wiki_reset_over_socket_mode_acks_with_an_ephemeral_confirmation(
    socket_slack: SlackServer, fake_slack: FakeSlack
):
    await fake_slack.send_envelope("events_api", envelope(dm("first")))
    await fake_slack.wait_for(lambda: [m for m in fake_slack.in_thread(DM, None) if m.text != texts.WORKING])

    command = dict(parse_qsl(slash_command(channel=DM, user=ALICE)))
    envelope_id = await fake_slack.send_envelope("slash_commands", command)

    ack = await fake_slack.wait_for(lambda: fake_slack.socket_acks.get(envelope_id))
    assert ack.payload == {"text": core_texts.RESET_PRIVATE_DONE, "response_type": "ephemeral"}


async def test_socket_mode_serves_no_http_event_endpoint(socket_slack: SlackServer):
    assert await socket_slack.get("/healthz") == 200
    response = await socket_slack.post("{}", {})
    assert response.status in (404, 405)
