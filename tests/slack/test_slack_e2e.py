"""Slack end to end: the real Bolt app over signed HTTP, the real core, the LLM fake over LiteLLM's HTTP path."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Core
from tests.e2e_core import PRINTER_PAGE, in_order, reset_voids_the_answer_in_flight
from tests.fakes.llm_server import FakeLLM, content_text

from .fake_slack import FakeSlack
from .slack_harness import SlackServer
from .slack_payloads import ALICE, CHANNEL, DM, dm, mention, message
from .test_slack_http import wait_answers as wait_fake_answers


async def wait_answers(fake: FakeSlack, channel: str, thread_ts: str | None, count: int = 1) -> list[Any]:
    # The real core loads and runs its reranker on the CPU: leave room for a busy machine.
    return await wait_fake_answers(fake, channel, thread_ts, count, timeout=20)


@pytest.fixture
def llm(e2e_llm: FakeLLM) -> FakeLLM:
    return e2e_llm


@pytest.fixture
def core(e2e_core: Core) -> Core:
    return e2e_core


@pytest.fixture
async def bot(fake_slack: FakeSlack, core: Core) -> AsyncIterator[SlackServer]:
    server = SlackServer(fake_slack, core.assistant)
    await server.start()
    yield server
    await server.close()


def _answer_prompts(llm: FakeLLM) -> list[list[dict[str, Any]]]:
    return [
        r["messages"] for r in llm.requests if "standalone question" not in content_text(r["messages"][0])
    ]


async def test_mention_is_answered_in_its_thread_with_a_link_to_the_page(
    bot: SlackServer, fake_slack: FakeSlack, core: Core
) -> None:
    event = mention("which queue does quillprint7 use?")
    await bot.event(event)
    [reply] = await wait_answers(fake_slack, CHANNEL, event["ts"])
    assert reply.thread_ts == event["ts"]
    assert f"/pages/{PRINTER_PAGE}/" in reply.everything
    assert "OPS-PRN" in reply.text


async def test_follow_up_in_the_thread_reaches_the_model_with_its_history(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM
) -> None:
    first = mention("how do I add the quillprint7 printer?")
    await bot.event(first)
    await wait_answers(fake_slack, CHANNEL, first["ts"])
    llm.requests.clear()

    await bot.event(message("and on Linux?", thread_ts=first["ts"]))
    await wait_answers(fake_slack, CHANNEL, first["ts"], count=2)

    condense = [r for r in llm.requests if "standalone question" in content_text(r["messages"][0])]
    assert condense and "how do I add the quillprint7 printer?" in content_text(condense[0]["messages"][-1])
    history = _answer_prompts(llm)[-1][1:-1]
    assert any("quillprint7" in content_text(m) for m in history)


async def test_wiki_reset_in_a_dm_clears_the_history_for_the_next_question(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM
) -> None:
    await bot.event(dm("how do I add the quillprint7 printer?"))
    await wait_answers(fake_slack, DM, None)

    started = time.perf_counter()
    answer = await bot.command(channel=DM, user=ALICE)
    assert answer.status == 200 and time.perf_counter() - started < 3
    assert "ephemeral" in answer.body and "forgot" in answer.body
    llm.requests.clear()

    await bot.event(dm("and on Linux?"))
    await wait_answers(fake_slack, DM, None, count=2)
    assert not [r for r in llm.requests if "standalone question" in content_text(r["messages"][0])]
    assert len(_answer_prompts(llm)[-1]) == 2  # the rules and the question: no history


async def test_ack_is_immediate_even_when_the_model_takes_ten_seconds(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM
) -> None:
    llm.delay_s = 10
    response, _ = await bot.event(mention("which queue does quillprint7 use?"))
    assert response.status == 200 and response.elapsed_s < 3
    # The answer is still on its way; closing the server cancels it, as a shutdown would.


async def test_a_reset_while_an_answer_is_in_flight_leaves_no_history(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM
) -> None:
    async def send(text: str, replies: int) -> None:
        await bot.event(dm(text))
        await wait_answers(fake_slack, DM, None, count=replies)

    ask = in_order(send)
    await reset_voids_the_answer_in_flight(llm, ask, lambda: ask("reset"))
