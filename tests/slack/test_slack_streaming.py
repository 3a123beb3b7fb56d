"""Issue 14 in Slack, end to end: the loading status, the answer streamed as the model writes it, the fallbacks,
the feedback buttons and the Messages tab's suggestions.

The real Bolt app and slack_sdk against the Slack Web API fake, the real core (sample wiki over the Confluence
fake, its question log) and the LLM fake streaming over LiteLLM's HTTP path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.slack import Pace, texts
from adapters.slack.feedback import FEEDBACK_ACTION
from bot.app import Core
from rag.answering import MODEL_DOWN_INTRO
from tests.e2e_core import PRINTER_PAGE
from tests.fakes.llm_server import FakeLLM
from tests.links import slack_live_links, slack_mentions, teams_live_links

from .fake_slack import METHOD_SCOPES, TEAM_ID, FakeSlack, Posted
from .slack_harness import SlackServer, finished
from .slack_payloads import ALICE, BOB, CHANNEL, DM, dm, envelope, home_opened, mention
from .test_slack_manifest import manifest

QUESTION = "which queue does quillprint7 use?"
ANSWER = "The floor printer quillprint7 prints through the queue OPS-PRN [1], which the service desk set up for it."
# Test timings: pieces close together, so that an answer of a few words comes in several.
PACE = Pace(stream_interval_s=0.05, edit_interval_s=0.2)


@pytest.fixture
def llm(e2e_llm: FakeLLM) -> FakeLLM:
    e2e_llm.set_responder(lambda _: ANSWER)
    e2e_llm.word_interval_s = 0.03
    return e2e_llm


@pytest.fixture
def core(e2e_core: Core, llm: FakeLLM) -> Core:
    return e2e_core


@pytest.fixture
async def bot(fake_slack: FakeSlack, core: Core) -> AsyncIterator[SlackServer]:
    server = SlackServer(fake_slack, core.assistant, pace=PACE)
    await server.start()
    yield server
    await server.close()


async def answered(bot: SlackServer, channel: str, thread_ts: str | None) -> Posted:
    """The thread's one message once the bot is done with it (a stream may be replaced after it ended); the
    real core runs its reranker on the CPU: room for that."""
    fake = bot.fake
    await fake.wait_for(
        lambda: (found := fake.in_thread(channel, thread_ts)) and all(map(finished, found)), 20
    )
    await bot.bot.wait_idle()
    [message] = fake.in_thread(channel, thread_ts)
    return message


async def ask_in_channel(bot: SlackServer) -> tuple[dict[str, Any], Posted]:
    """The question as a channel mention, and the bot's answer in its thread once done."""
    event = mention(QUESTION)
    await bot.event(event)
    return event, await answered(bot, CHANNEL, event["ts"])


def feedback_values(message: Posted) -> dict[str, str]:
    """The values of the message's feedback buttons: {"positive_button": ..., "negative_button": ...}."""
    [element] = [e for b in message.blocks if b["type"] == "context_actions" for e in b["elements"]]
    assert element["type"] == "feedback_buttons" and element["action_id"] == FEEDBACK_ACTION
    return {side: element[side]["value"] for side in ("positive_button", "negative_button")}


def sources_text(message: Posted) -> str:
    return "".join(e["text"] for b in message.blocks if b["type"] == "context" for e in b["elements"])


async def test_a_mention_shows_a_loading_status_then_streams_the_answer_in_order(
    bot: SlackServer, fake_slack: FakeSlack, core: Core
) -> None:
    event, message = await ask_in_channel(bot)

    [(channel, thread, status)] = fake_slack.status_history
    assert (channel, thread) == (CHANNEL, event["ts"]) and status.status == texts.STATUS
    assert fake_slack.statuses == {}, "the answer cleared the status"
    assert message.stream == "stopped" and len(message.pieces) >= 3, message.pieces
    assert "".join(message.pieces) == message.text == ANSWER  # in order, and the whole answer
    methods = [c.method for c in fake_slack.calls if c.method != "auth.test"]
    assert methods[0] == "assistant.threads.setStatus" and methods[1] == "chat.startStream"
    assert methods[-1] == "chat.stopStream" and all(c.ok for c in fake_slack.calls)
    [start] = fake_slack.calls_of("chat.startStream")
    assert start.params["recipient_user_id"] == ALICE and start.params["recipient_team_id"] == TEAM_ID
    assert start.params["thread_ts"] == event["ts"]
    # The Sources and the buttons close the message, after its text.
    assert f"/pages/{PRINTER_PAGE}/" in sources_text(message)
    values = feedback_values(message)
    assert values["positive_button"].startswith("up:") and values["negative_button"].startswith("down:")


async def test_the_first_words_show_at_once_while_the_model_is_still_writing(
    fake_slack: FakeSlack, core: Core, llm: FakeLLM
) -> None:
    server = SlackServer(fake_slack, core.assistant)  # the production timings
    await server.start()
    try:
        llm.word_interval_s = 0.1  # about two seconds for the whole answer
        event = mention(QUESTION)
        await server.event(event)
        await answered(server, CHANNEL, event["ts"])
    finally:
        await server.close()
    [start] = fake_slack.calls_of("chat.startStream")
    [stop] = fake_slack.calls_of("chat.stopStream")
    [(_, first_word)] = llm.first_words
    # Shown once three words are in (the last one may still grow, and so may the one before it in Slack's
    # rendering), not at the next tick of the pace: 0.2 s of words, and room for a busy machine.
    assert start.at - first_word < 0.5
    assert stop.at - start.at > 1.0, "the first text came only when the answer was done"


async def test_the_model_output_in_a_stream_links_and_pings_nothing(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM, core: Core
) -> None:
    hostile = (
        "Use OPS-PRN [1]. [click](https://evil.example/x) <@U0BOB> <!channel> <!here> "
        "<https://evil.example/s|slack style> https://evil.example/bare [1](https://evil.example/steal)"
    )
    llm.set_responder(lambda _: hostile)
    _, message = await ask_in_channel(bot)

    assert message.stream == "stopped" and "evil.example" in message.text  # shown, as text
    assert teams_live_links(message.text) == [] and slack_live_links(message.text) == []
    assert slack_mentions(message.text) == [] and "<" not in message.text
    wiki = core.settings.confluence_url.rstrip("/")
    assert [link for link in slack_live_links(sources_text(message)) if not link.startswith(wiki)] == []


async def test_where_streaming_is_refused_the_answer_is_posted_then_updated(
    bot: SlackServer, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.refuse_streaming("channel_type_not_supported")
    _, message = await ask_in_channel(bot)

    assert [c.ok for c in fake_slack.calls_of("chat.startStream")] == [False]  # tried once, then posted
    assert message.stream is None and message.edits >= 1  # the draft, posted, then replaced by the answer
    assert "OPS-PRN" in message.text and f"/pages/{PRINTER_PAGE}/" in sources_text(message)
    assert feedback_values(message)
    [line] = [r.getMessage() for r in caplog.records if "chat.startStream" in r.getMessage()]
    assert "channel_type_not_supported" in line


async def test_a_channel_that_refused_streaming_is_not_asked_again_for_every_answer(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    fake_slack.refuse_streaming("channel_type_not_supported")
    await ask_in_channel(bot)
    _, second = await ask_in_channel(bot)

    assert [c.ok for c in fake_slack.calls_of("chat.startStream")] == [False]  # once for the channel
    assert second.stream is None and second.edits >= 1 and "OPS-PRN" in second.text
    assert feedback_values(second)


async def test_a_model_failing_mid_answer_ends_with_the_passages_in_place_of_the_stream(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM
) -> None:
    llm.cut_stream_after = 8
    _, message = await ask_in_channel(bot)

    assert message.pieces, "part of the answer was streamed before the failure"
    assert message.edits == 1 and message.stream == "stopped"  # the stream ended, then replaced
    intro = MODEL_DOWN_INTRO["en"].strip("_")
    assert message.text.startswith(f"_{intro}_") and "quillprint7" in message.text
    assert "through the queue" not in message.text  # nothing of the broken answer is left
    assert f"/pages/{PRINTER_PAGE}/" in sources_text(message)


async def test_a_stream_slack_ends_midway_is_replaced_by_the_whole_answer(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM
) -> None:
    llm.word_interval_s = 0.1
    event = mention(QUESTION)
    await bot.event(event)
    await fake_slack.wait_for(lambda: fake_slack.calls_of("chat.appendStream"))
    fake_slack.end_streams()  # as Slack does on a timeout of its own
    message = await answered(bot, CHANNEL, event["ts"])

    assert "OPS-PRN" in message.text and "set up for it" in message.text and message.edits == 1
    assert f"/pages/{PRINTER_PAGE}/" in sources_text(message)


async def test_without_a_loading_status_a_placeholder_grows_into_the_answer(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next("assistant.threads.setStatus", error="missing_scope")
    _, message = await ask_in_channel(bot)

    assert fake_slack.calls_of("chat.startStream") == []  # one message: the placeholder, updated
    assert message.edits >= 1 and "OPS-PRN" in message.text and feedback_values(message)


async def test_at_the_top_level_of_a_dm_the_answer_is_posted_then_updated_there(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    # A stream is a thread reply, but the DM's top level is one conversation: its answers stay there.
    await bot.event(dm(QUESTION))
    message = await answered(bot, DM, None)

    assert (
        fake_slack.calls_of("chat.startStream") == []
        and fake_slack.calls_of("assistant.threads.setStatus") == []
    )
    assert message.thread_ts is None and message.edits >= 2  # placeholder, draft(s), answer
    assert "OPS-PRN" in message.text and feedback_values(message)


async def test_in_a_dm_thread_the_answer_is_streamed_into_the_thread(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    root = dm("an earlier question")
    event = dm(QUESTION, thread_ts=root["ts"])
    await bot.event(event)
    message = await answered(bot, DM, root["ts"])

    assert message.stream == "stopped" and message.text == ANSWER


async def test_a_feedback_click_is_acknowledged_at_once_recorded_and_thanked(
    bot: SlackServer, fake_slack: FakeSlack, core: Core
) -> None:
    event, message = await ask_in_channel(bot)
    down = feedback_values(message)["negative_button"]

    started = time.perf_counter()
    response = await bot.click(value=down, message_ts=message.ts, thread_ts=event["ts"], user=BOB)
    assert response.status == 200 and time.perf_counter() - started < 1.0

    [thanks] = await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    assert (thanks.channel, thanks.user, thanks.thread_ts) == (CHANNEL, BOB, event["ts"])
    assert thanks.text == texts.FEEDBACK_THANKS
    assert core.questions is not None
    [entry] = core.questions.entries(since=datetime.now(UTC) - timedelta(hours=1))
    assert (entry.answer_id, entry.up, entry.down) == (down.partition(":")[2], 0, 1)


async def test_a_click_naming_no_answer_the_log_holds_is_not_thanked_as_recorded(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    response = await bot.click(value="up:no-such-answer", message_ts="1700000000.000100", thread_ts=None)
    assert response.status == 200
    [reply] = await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    assert reply.text == texts.FEEDBACK_LOST and reply.user == ALICE


async def test_the_messages_tab_offers_the_most_cited_pages_as_suggested_prompts(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    event = mention(QUESTION)
    await bot.event(event)
    await answered(bot, CHANNEL, event["ts"])

    await bot.deliver(envelope(home_opened(tab="home")))
    await bot.deliver(envelope(home_opened()))
    title, prompts = await fake_slack.wait_for(lambda: fake_slack.suggested_prompts.get(DM))
    assert title == texts.SUGGESTIONS_TITLE
    assert [p["title"] for p in prompts] == ["Printer setup"]
    assert "Printer setup" in prompts[0]["message"]
    [call] = fake_slack.calls_of("assistant.threads.setSuggestedPrompts")  # the Home tab asked nothing
    assert "thread_ts" not in call.params


async def test_before_any_answer_the_messages_tab_gets_no_prompts(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    assert (await bot.deliver(envelope(home_opened()))).status == 200
    await bot.bot.wait_idle()
    assert fake_slack.calls_of("assistant.threads.setSuggestedPrompts") == []


async def test_an_answer_longer_than_a_stream_holds_is_delivered_whole(
    bot: SlackServer, fake_slack: FakeSlack, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    paragraph = "The queue OPS-PRN serves the floor printer quillprint7 on every floor of the building. " * 25
    code = "```\n" + "\n".join(f"lpadmin -p quillprint7 --step {n}" for n in range(300)) + "\n```"
    long = f"{paragraph} [1]\n\n{code}\n\n{paragraph}\n\nThat is all. [1]"
    assert len(long) > 12_000
    llm.set_responder(lambda _: long)
    llm.word_interval_s = 0.0
    event = mention(QUESTION)
    await bot.event(event)
    await fake_slack.wait_for(lambda: len(fake_slack.in_thread(CHANNEL, event["ts"])) > 1, 20)
    await bot.bot.wait_idle()
    parts = fake_slack.in_thread(CHANNEL, event["ts"])

    assert all(call.ok for call in fake_slack.calls), [c for c in fake_slack.calls if not c.ok]
    # Streamed up to what a stream holds, then replaced by the answer in messages under Slack's limits.
    assert parts[0].stream == "stopped" and parts[0].edits == 1
    assert fake_slack.calls_of("chat.startStream")
    shown = "".join(_section_texts(part) for part in parts)
    assert shown.count("lpadmin -p quillprint7 --step") == 300 and "That is all." in shown
    with_buttons = [part for part in parts if any(b["type"] == "context_actions" for b in part.blocks)]
    assert with_buttons == [parts[-1]] and f"/pages/{PRINTER_PAGE}/" in sources_text(parts[-1])
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def _section_texts(message: Posted) -> str:
    return "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")


async def test_every_method_the_app_calls_is_granted_by_the_manifests_scopes(
    bot: SlackServer, fake_slack: FakeSlack
) -> None:
    """The manifest checked against the running code: every feature used once, with only the scopes it grants."""
    fake_slack.granted_scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    event, message = await ask_in_channel(bot)
    await bot.click(
        value=feedback_values(message)["positive_button"], message_ts=message.ts, thread_ts=event["ts"]
    )
    await bot.event(dm(QUESTION))
    await answered(bot, DM, None)
    await bot.deliver(envelope(home_opened()))
    await bot.bot.wait_idle()

    called = {call.method for call in fake_slack.calls}
    assert called >= set(METHOD_SCOPES) - {"apps.connections.open"}, "a feature went unused"
    assert [(c.method, c.params) for c in fake_slack.calls if not c.ok] == []
