"""Bad Slack settings fail at startup with one line naming the variable, before the adapter gets a config."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from adapters.slack import EVENTS_PATH, add_slack_routes
from bot.config import SettingsError
from bot.platforms import slack_config

from .fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack
from .fake_slack_assistant import FakeAssistant
from .slack_harness import slack_settings


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"slack_bot_token": ""}, "SLACK_BOT_TOKEN"),
        ({"slack_bot_token": APP_TOKEN}, "SLACK_BOT_TOKEN"),
        ({"slack_signing_secret": ""}, "SLACK_SIGNING_SECRET"),
        ({"slack_app_token": BOT_TOKEN}, "SLACK_APP_TOKEN"),
    ],
)
def test_bad_slack_settings_are_refused_with_the_variables_name(overrides, variable):
    settings = slack_settings(FakeSlack(), **overrides)
    with pytest.raises(SettingsError, match=variable):
        slack_config(settings)


def test_http_mode_mounts_the_events_path_and_socket_mode_does_not():
    http_app, socket_app = web.Application(), web.Application()
    add_slack_routes(http_app, config=slack_config(slack_settings(FakeSlack())), assistant=FakeAssistant())
    socket_settings = slack_settings(FakeSlack(), socket_mode=True, slack_signing_secret="")
    add_slack_routes(socket_app, config=slack_config(socket_settings), assistant=FakeAssistant())

    def paths(app: web.Application) -> set[str]:
        return {resource.canonical for resource in app.router.resources()}

    assert EVENTS_PATH in paths(http_app)
    assert EVENTS_PATH not in paths(socket_app)
    assert len(socket_app.on_startup) == len(http_app.on_startup) + 1  # the Socket Mode client starts with it


def test_oauth_client_variables_that_would_make_bolt_drop_the_bot_token_are_refused(monkeypatch):
    monkeypatch.setenv("SLACK_CLIENT_ID", "123.456")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "abcdef")
    with pytest.raises(SettingsError, match="SLACK_CLIENT_ID"):
        slack_config(slack_settings(FakeSlack()))


def test_the_bot_token_in_the_environment_brings_no_warning_at_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As `wikibot serve` runs: the token is an environment variable, which Bolt reads behind our back.
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with caplog.at_level(logging.WARNING):
        add_slack_routes(
            web.Application(), config=slack_config(slack_settings(FakeSlack())), assistant=FakeAssistant()
        )
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
