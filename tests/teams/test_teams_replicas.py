"""Two Teams replicas on one Redis: the Bot Framework's retry of an activity to the other one is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from rag.shared_state import RedisChatState

from .conftest import TeamsBot, start_bot, teams_settings
from .connector_fake import ConnectorFake
from .fake_assistant import FakeAssistant
from .identity import Identity


@pytest.fixture
async def replicas(
    identity: Identity, connector: ConnectorFake, chat_state: RedisChatState
) -> AsyncIterator[list[tuple[TeamsBot, FakeAssistant]]]:
    started: list[tuple[TeamsBot, FakeAssistant, web.AppRunner]] = []
    for _ in range(2):
        assistant = FakeAssistant()
        bot, runner = await start_bot(teams_settings(), assistant, identity, connector, dedupe=chat_state)
        started.append((bot, assistant, runner))
    yield [(bot, assistant) for bot, assistant, _ in started]
    for _, _, runner in started:
        await runner.cleanup()


async def test_an_activity_delivered_to_one_replica_and_retried_to_the_other_is_answered_once(
    replicas: list[tuple[TeamsBot, FakeAssistant]], connector: ConnectorFake
) -> None:
    (a, asked_a), (b, asked_b) = replicas
    activity = a.activity("How do I get VPN access?", activity_id="same-id")
    assert (await a.send(activity)).status in (200, 201)
    assert (await b.send(activity)).status in (200, 201)

    await connector.wait_for_messages(1)
    await asyncio.sleep(0.3)
    assert len(connector.messages()) == 1
    assert len(asked_a.received) + len(asked_b.received) == 1
