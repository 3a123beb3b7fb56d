"""Teams end to end: signed activities through the real botbuilder stack into the real core and LLM fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Core
from tests.e2e_core import PRINTER_PAGE, in_order, reset_voids_the_answer_in_flight
from tests.fakes.llm_server import FakeLLM, content_text

from .conftest import Identity, TeamsBot, start_bot, teams_settings
from .connector_fake import ConnectorFake


@pytest.fixture
def llm(e2e_llm: FakeLLM) -> FakeLLM:
    return e2e_llm


@pytest.fixture
def core(e2e_core: Core) -> Core:
    return e2e_core


@pytest.fixture
async def bot(identity: Identity, connector: ConnectorFake, core: Core) -> AsyncIterator[TeamsBot]:
    bot, runner = await start_bot(teams_settings(), core.assistant, identity, connector)  # type: ignore[arg-type]
    yield bot
    await runner.cleanup()


def _condense_requests(llm: FakeLLM) -> list[dict[str, Any]]:
    return [r for r in llm.requests if "standalone question" in content_text(r["messages"][0])]


async def test_personal_chat_answer_cites_the_page_and_a_follow_up_uses_the_history(
    bot: TeamsBot, connector: ConnectorFake, llm: FakeLLM
) -> None:
    sent = await bot.send(bot.activity("how do I add the quillprint7 printer?", activity_id="1"))
    assert sent.status in (200, 201)
    [first] = await connector.wait_for_messages(1)
    assert f"/pages/{PRINTER_PAGE}/" in first.text

    llm.requests.clear()
    await bot.send(bot.activity("and on Linux?", activity_id="2"))
    await connector.wait_for_messages(2)
    [condense] = _condense_requests(llm)
    assert "how do I add the quillprint7 printer?" in content_text(condense["messages"][-1])


async def test_reset_means_the_next_question_carries_no_history(
    bot: TeamsBot, connector: ConnectorFake, llm: FakeLLM
) -> None:
    await bot.send(bot.activity("how do I add the quillprint7 printer?", activity_id="1"))
    await connector.wait_for_messages(1)
    await bot.send(bot.activity("reset", activity_id="2"))
    await connector.wait_for_messages(2)
    llm.requests.clear()

    await bot.send(bot.activity("and on Linux?", activity_id="3"))
    await connector.wait_for_messages(3)
    assert _condense_requests(llm) == []
    assert len(llm.requests[-1]["messages"]) == 2


async def test_a_reset_while_an_answer_is_in_flight_leaves_no_history(
    bot: TeamsBot, connector: ConnectorFake, llm: FakeLLM
) -> None:
    async def send(text: str, replies: int) -> None:
        await bot.send(bot.activity(text, activity_id=str(replies)))
        await connector.wait_for_messages(replies)

    ask = in_order(send)
    await reset_voids_the_answer_in_flight(llm, ask, lambda: ask("reset"))
