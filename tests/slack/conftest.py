"""Fixtures: a loopback Slack, the fake core, and the real server between them; the environment cleared."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from .fake_slack import FakeSlack
from .fake_slack_assistant import FakeAssistant
from .slack_harness import SlackServer


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk reads proxies and Bolt reads SLACK_* variables on its own: none may leak in from the machine.
    for name in list(os.environ):
        upper = name.upper()
        if (
            upper.startswith("SLACK_")
            or upper.endswith("_PROXY")
            or upper.startswith(("LITELLM", "CONFLUENCE"))
        ):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def assistant() -> FakeAssistant:
    return FakeAssistant()


@pytest.fixture
async def slack(fake_slack: FakeSlack, assistant: FakeAssistant) -> AsyncIterator[SlackServer]:
    server = SlackServer(fake_slack, assistant)
    await server.start()
    yield server
    await server.close()
