"""Every authentication failure is a 401 with no reply; the token never reaches the log."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable

import pytest

from .conftest import TeamsBot, start_bot, teams_settings
from .connector_fake import ConnectorFake
from .fake_assistant import FakeAssistant
from .identity_provider import new_rsa_key

QUESTION = "How do I get VPN access?"


async def assert_rejected(
    teams: TeamsBot, authorization: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        sent = await teams.send(teams.activity(QUESTION), authorization=authorization)
        await asyncio.sleep(0.2)

    assert sent.status == 401
    assert teams.connector.posted == []
    token = (authorization or "").partition(" ")[2]
    if token:
        assert token not in caplog.text
        claims_part = token.split(".")[1]
        assert len(claims_part) < 20 or claims_part not in caplog.text  # not even the claims part


async def test_no_token_is_401(teams: TeamsBot, caplog: pytest.LogCaptureFixture) -> None:
    await assert_rejected(teams, None, caplog)


async def test_token_for_another_bot_is_401(teams: TeamsBot, caplog: pytest.LogCaptureFixture) -> None:
    await assert_rejected(
        teams, f"Bearer {teams.token(audience='11111111-2222-3333-4444-555555555555')}", caplog
    )


async def test_expired_token_is_401(teams: TeamsBot, caplog: pytest.LogCaptureFixture) -> None:
    # Past the SDK's five minutes of clock tolerance.
    await assert_rejected(teams, f"Bearer {teams.token(expires_in=-3600)}", caplog)


async def test_token_signed_by_an_unknown_key_is_401(
    teams: TeamsBot, caplog: pytest.LogCaptureFixture
) -> None:
    await assert_rejected(teams, f"Bearer {teams.token(key=new_rsa_key(), kid='attacker-key')}", caplog)


async def test_token_signed_by_another_key_under_a_known_key_id_is_401(
    teams: TeamsBot, caplog: pytest.LogCaptureFixture
) -> None:
    await assert_rejected(teams, f"Bearer {teams.token(key=new_rsa_key())}", caplog)


async def test_garbage_token_is_401(teams: TeamsBot, caplog: pytest.LogCaptureFixture) -> None:
    await assert_rejected(teams, "Bearer not.a.jwt-at-all", caplog)


async def test_token_for_another_service_url_is_401(
    teams: TeamsBot, caplog: pytest.LogCaptureFixture
) -> None:
    # A valid token for a different serviceUrl must not let a caller redirect the bot's answers.
    token = teams.identity.provider.mint(service_url="https://smba.example.net/emea/")
    await assert_rejected(teams, f"Bearer {token}", caplog)


async def test_valid_token_is_accepted(teams: TeamsBot, connector: ConnectorFake) -> None:
    sent = await teams.send(teams.activity(QUESTION))

    assert sent.status == 201
    assert len(await connector.wait_for_messages(1)) == 1


async def test_garbage_body_is_400_not_500(teams: TeamsBot) -> None:
    for body in ([1, 2], {"no": "type"}, "text"):
        sent = await teams.send(body)  # type: ignore[arg-type]
        assert sent.status == 400


async def test_without_app_id_the_endpoint_is_off(
    identity: object, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    settings = teams_settings(microsoft_app_id="", microsoft_app_password="")
    bot, runner = await start_bot(settings, assistant, identity, connector)  # type: ignore[arg-type]
    try:
        sent = await bot.send(bot.activity(QUESTION), authorization=None)
        assert sent.status == 404
        assert bot.endpoint is None
    finally:
        await runner.cleanup()


async def test_anonymous_emulator_mode_answers_unsigned_requests_and_warns(
    identity: object, connector: ConnectorFake, assistant: FakeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    settings = teams_settings(microsoft_app_id="", microsoft_app_password="", teams_allow_anonymous=True)
    with caplog.at_level(logging.WARNING):
        bot, runner = await start_bot(settings, assistant, identity, connector)  # type: ignore[arg-type]
    try:
        assert "UNAUTHENTICATED" in caplog.text
        activity = bot.activity(QUESTION)
        activity["channelId"] = "emulator"
        sent = await bot.send(activity, authorization=None)
        assert sent.status == 201
        [reply] = await connector.wait_for_messages(1)
        assert reply.authorization == ""
    finally:
        await runner.cleanup()


async def test_a_rejected_request_cannot_forge_a_log_line(
    teams: TeamsBot, process_log: Callable[..., io.StringIO]
) -> None:
    buffer = process_log(log_level="INFO")
    forged = "2026-11-29 10:00:00,000 INFO adapters.teams.bot: admin granted"
    conversation = {"id": f"a:1\n{forged}", "conversationType": "personal", "tenantId": "t"}
    sent = await teams.send(teams.activity(QUESTION, conversation=conversation), authorization="Bearer x.y.z")
    assert sent.status == 401
    assert "rejected a request" in buffer.getvalue()
    assert not any(line.startswith(forged[:19]) for line in buffer.getvalue().splitlines())
