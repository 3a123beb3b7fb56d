"""Settings refused up front (before the adapter gets its config), and background replies cancelled when the
server stops."""

from __future__ import annotations

import time

import pytest

from adapters.teams.bot import Timing
from bot.config import SettingsError
from bot.platforms import teams_config

from .conftest import APP_PASSWORD, Identity, start_bot, teams_settings
from .connector_fake import ConnectorFake
from .fake_assistant import FakeAssistant


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"microsoft_app_password": ""}, "MICROSOFT_APP_PASSWORD"),
        ({"microsoft_app_type": "SingleTenant"}, "MICROSOFT_APP_TENANT_ID"),
        ({"microsoft_app_type": "UserAssignedMSI", "microsoft_app_password": ""}, "MICROSOFT_APP_TENANT_ID"),
    ],
)
def test_incomplete_teams_settings_name_the_variable_to_fix(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        teams_config(teams_settings(**overrides))


def test_single_tenant_with_its_tenant_is_accepted() -> None:
    config = teams_config(
        teams_settings(microsoft_app_type="SingleTenant", microsoft_app_tenant_id="contoso-id")
    )
    assert (config.app_type, config.tenant_id) == ("SingleTenant", "contoso-id")
    assert APP_PASSWORD not in repr(config)  # a config in a log line or a failed assertion keeps its secret


async def test_stopping_the_server_cancels_pending_late_answers(
    identity: Identity, connector: ConnectorFake
) -> None:
    assistant = FakeAssistant(delay_s=30.0)
    bot, runner = await start_bot(
        teams_settings(), assistant, identity, connector, timing=Timing(reply_deadline_s=0.2)
    )
    sent = await bot.send(bot.activity("How do I get VPN access?"))
    assert sent.status == 201
    assert bot.endpoint is not None and len(bot.endpoint.tasks) > 0

    started = time.monotonic()
    await runner.cleanup()

    assert time.monotonic() - started < 5.0
    assert len(bot.endpoint.tasks) == 0
    assert connector.messages() == []
