"""Streaming in Teams, end to end: signed activities through the real botbuilder stack into the real core, whose
model (the loopback LLM behind LiteLLM's real streaming path) writes the answer word by word."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from adapters.teams.bot import Timing
from bot.app import Core
from rag.answering import MODEL_DOWN_INTRO
from rag.types import IncomingMessage, LoggedQuestion
from tests.e2e_core import PRINTER_PAGE
from tests.fakes.llm_server import FakeLLM
from tests.links import TEAMS_MARKUP, invisible, teams_live_links
from tests.test_hostile_replies import HOSTILE_ANSWER

from .conftest import BOT_ACCOUNT, GROUP_CHAT, TENANT_ID, Identity, Sent, TeamsBot, start_bot, teams_settings
from .connector_fake import ConnectorFake

QUESTION = "how do I add the quillprint7 printer?"
INTERVAL_S = 0.2
LONG_ANSWER = " ".join(["The floor printer is quillprint7 on the queue OPS-PRN [1]."] * 6)
THREAD = {
    "id": "19:general0123456789@thread.tacv2;messageid=1700000000777",
    "conversationType": "channel",
    "tenantId": TENANT_ID,
}


class _Unseen:
    async def working(self) -> None:
        pass

    async def draft(self, text: str) -> None:
        pass


@pytest.fixture
def llm(e2e_llm: FakeLLM) -> FakeLLM:
    return e2e_llm


@pytest.fixture
async def core(e2e_core: Core, llm: FakeLLM) -> Core:
    # LiteLLM's first streamed answer in a process pays for its imports: warmed, the timings below are Teams'.
    await e2e_core.assistant.ask(IncomingMessage(session_key="warm-up", text=QUESTION), progress=_Unseen())
    llm.word_interval_s = 0.06
    return e2e_core


@pytest.fixture
async def start(
    identity: Identity, connector: ConnectorFake, core: Core
) -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []

    async def start_with(**timing: float) -> TeamsBot:
        options = {"stream_interval_s": INTERVAL_S, **timing}
        bot, runner = await start_bot(
            teams_settings(),
            core.assistant,
            identity,
            connector,
            timing=Timing(**options),  # type: ignore[arg-type]
        )
        runners.append(runner)
        return bot

    yield start_with
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def bot(start: Callable[..., Any]) -> TeamsBot:
    return await start()  # type: ignore[no-any-return]


def logged(core: Core) -> LoggedQuestion:
    assert core.questions is not None
    entries = core.questions.entries(since=datetime.now(UTC) - timedelta(hours=1))
    [entry] = [e for e in entries if e.platform == "teams"]
    return entry


async def test_a_personal_chat_streams_the_answer_then_ends_the_stream_with_the_labelled_cited_answer(
    bot: TeamsBot, connector: ConnectorFake, llm: FakeLLM
) -> None:
    sent = await bot.send(bot.activity(QUESTION))

    assert sent.status in (200, 201)
    [final] = await connector.wait_for_messages(1, timeout=20.0)
    updates = connector.stream_updates()
    assert connector.typing() == updates, "no plain typing indicator over the stream"
    assert len(updates) >= 4, [u.text for u in updates]
    first, *streamed = updates
    # The first update starts the stream (informative until the model writes); its id names the stream.
    assert first.stream_info == {"type": "streaminfo", "streamType": "informative", "streamSequence": 1}
    assert first.text == "Looking through the wiki…"
    stream_id = first.id
    assert stream_id
    assert [u.stream_info for u in streamed] == [
        {"type": "streaminfo", "streamType": "streaming", "streamSequence": n, "streamId": stream_id}
        for n in range(2, len(updates) + 1)
    ]
    for before, after in itertools.pairwise(streamed):
        assert after.text.startswith(before.text) and len(after.text) > len(before.text)
    # Teams throttles faster streams: one update at a time, at its pace.
    assert all(b.at - a.at >= INTERVAL_S * 0.9 for a, b in itertools.pairwise([*updates, final]))

    assert final.stream_info == {"type": "streaminfo", "streamType": "final", "streamId": stream_id}
    assert final.text.startswith(streamed[-1].text)
    assert "**Sources**" in final.text and f"/pages/{PRINTER_PAGE}/" in final.text
    message = final.message_entity
    assert message is not None
    assert message["additionalType"] == ["AIGeneratedContent"]
    [claim] = message["citation"]
    assert claim["position"] == 1 and f"/pages/{PRINTER_PAGE}/" in claim["appearance"]["url"]
    assert final.channel_data.get("feedbackLoop") == {"type": "default"}
    assert connector.refused == []
    assert llm.last_request.get("stream") is True


async def test_a_feedback_click_on_the_streamed_answer_is_recorded_in_the_question_log(
    bot: TeamsBot, connector: ConnectorFake, core: Core
) -> None:
    await bot.send(bot.activity(QUESTION))
    [final] = await connector.wait_for_messages(1, timeout=20.0)
    assert final.stream_info is not None
    # Teams names the streamed message by the stream's id: the final message replaced the stream.
    click = bot.feedback_click(
        final.stream_info["streamId"], "dislike", feedback='{"feedbackText":"The queue moved to OPS-PRN2"}'
    )

    answered = await until_rated(bot, click, core)

    assert (answered.status, answered.body) == (200, "")
    entry = logged(core)
    assert (entry.up, entry.down, entry.comments) == (0, 1, ("The queue moved to OPS-PRN2",))
    assert entry.platform == "teams"


async def test_a_click_on_a_message_the_log_does_not_hold_is_answered_and_ignored(
    bot: TeamsBot, connector: ConnectorFake, core: Core
) -> None:
    await bot.send(bot.activity(QUESTION))
    await connector.wait_for_messages(1, timeout=20.0)

    answered = await bot.send(bot.feedback_click("1700000000123", "like"))
    not_feedback = bot.feedback_click("1700000000123")
    not_feedback["value"] = {"actionName": "somethingElse", "actionValue": {}}
    other = await bot.send(not_feedback)

    assert (answered.status, answered.body) == (200, "")
    assert (other.status, other.body) == (200, "")
    entry = logged(core)
    assert (entry.up, entry.down) == (0, 0)
    assert len(connector.messages()) == 1, "a click is answered in the invoke, never in the chat"


@pytest.mark.parametrize("conversation", [GROUP_CHAT, THREAD], ids=["group-chat", "channel-thread"])
async def test_group_chats_and_channels_get_one_final_message_and_no_stream(
    bot: TeamsBot, connector: ConnectorFake, core: Core, conversation: dict[str, Any]
) -> None:
    activity_id = "1700000000777"
    text = f"<at>WikiBot</at> {QUESTION}" if conversation is THREAD else QUESTION
    mention = {"type": "mention", "text": "<at>WikiBot</at>", "mentioned": BOT_ACCOUNT}
    await bot.send(bot.activity(text, conversation=conversation, activity_id=activity_id, entities=[mention]))

    [final] = await connector.wait_for_messages(1, timeout=20.0)
    assert connector.stream_updates() == []
    assert connector.typing() and all(not t.entities for t in connector.typing())
    assert final.stream_info is None
    assert final.reply_to_id == activity_id
    message = final.message_entity
    assert message is not None and message["additionalType"] == ["AIGeneratedContent"]
    assert final.channel_data.get("feedbackLoop") == {"type": "default"}

    # A click in a channel thread may name the channel without its thread: it still finds the answer.
    clicked_in = {**conversation, "id": conversation["id"].split(";")[0]}
    await until_rated(bot, bot.feedback_click(final.id, "like", conversation=clicked_in), core)


async def test_a_model_failing_mid_answer_ends_the_stream_with_the_passages(
    bot: TeamsBot, connector: ConnectorFake, llm: FakeLLM
) -> None:
    llm.set_responder(lambda _: LONG_ANSWER)
    llm.cut_stream_after = 12

    await bot.send(bot.activity(QUESTION))

    [final] = await connector.wait_for_messages(1, timeout=20.0)
    streamed = [
        u for u in connector.stream_updates() if u.stream_info and u.stream_info["streamType"] == "streaming"
    ]
    assert streamed, "part of the answer was shown before the model failed"
    assert final.stream_info is not None and final.stream_info["streamType"] == "final"
    # What the stream showed is replaced by the whole final message: the passages, not the half answer.
    assert final.text.startswith(MODEL_DOWN_INTRO["en"])
    assert not final.text.startswith(streamed[-1].text)
    assert "quillprint7" in final.text
    message = final.message_entity
    assert message is not None and "additionalType" not in message, "passages are not AI-generated"
    assert message["citation"]
    assert final.channel_data.get("feedbackLoop") == {"type": "default"}
    assert connector.refused == []


async def test_past_teams_time_limit_the_stream_is_given_up_and_the_answer_still_arrives(
    bot: TeamsBot, connector: ConnectorFake, llm: FakeLLM, core: Core
) -> None:
    connector.stream_limit_s = 0.5  # Teams' two minutes, shortened
    llm.set_responder(lambda _: LONG_ANSWER)

    await bot.send(bot.activity(QUESTION))

    [refused] = connector.refused
    assert (refused.status, refused.code) == (403, "ContentStreamNotAllowed")
    [answer] = await connector.wait_for_messages(1, timeout=20.0)
    assert answer.stream_info is None, "the refused stream is not named again"
    assert answer.text.startswith(LONG_ANSWER)
    assert answer.message_entity is not None
    assert answer.message_entity["additionalType"] == ["AIGeneratedContent"]
    await until_rated(bot, bot.feedback_click(answer.id, "like"), core)


async def test_near_the_limit_the_bot_ends_the_stream_itself_and_posts_the_answer_as_a_message(
    start: Callable[..., Any], connector: ConnectorFake, llm: FakeLLM, core: Core
) -> None:
    # The limit runs from the first (informative) update: long enough for the retrieval and the model's first
    # words on a busy machine (0.6 s was not, once), well short of the ~4 s the model takes to write it all.
    bot, _ = await ask_at_length(start, llm, stream_limit_s=2.0)

    cut, answer = await connector.wait_for_messages(2, timeout=20.0)
    stream_id = connector.stream_updates()[0].id
    # The stream ends with what it showed, before Teams would refuse it; the answer follows on its own.
    assert cut.stream_info == {"type": "streaminfo", "streamType": "final", "streamId": stream_id}
    assert cut.text and LONG_ANSWER.startswith(cut.text.rstrip(" ."))
    assert cut.channel_data.get("feedbackLoop") is None
    assert answer.stream_info is None and answer.text.startswith(LONG_ANSWER)
    assert answer.channel_data.get("feedbackLoop") == {"type": "default"}
    assert connector.refused == []
    await until_rated(bot, bot.feedback_click(answer.id, "like"), core)


async def test_a_stream_outlasting_the_turn_goes_on_proactively_and_its_answer_can_be_rated(
    start: Callable[..., Any], connector: ConnectorFake, llm: FakeLLM, core: Core
) -> None:
    bot, sent = await ask_at_length(start, llm, reply_deadline_s=0.5)
    turn_ended = time.monotonic()
    assert sent.elapsed_s < 2.0
    [final] = await connector.wait_for_messages(1, timeout=20.0)

    updates = connector.stream_updates()
    assert [u.stream_info["streamSequence"] for u in updates if u.stream_info] == list(
        range(1, len(updates) + 1)
    )
    assert any(u.at > turn_ended for u in updates[1:]), "updates kept coming after the turn"
    assert final.stream_info == {"type": "streaminfo", "streamType": "final", "streamId": updates[0].id}
    assert final.text.startswith(LONG_ANSWER)
    assert connector.refused == []
    await until_rated(bot, bot.feedback_click(updates[0].id, "like"), core)
    assert logged(core).up == 1


async def ask_at_length(start: Callable[..., Any], llm: FakeLLM, **timing: float) -> tuple[TeamsBot, Sent]:
    """A bot with these timings asked a question whose answer takes the model a few seconds to write."""
    bot: TeamsBot = await start(**timing)
    llm.set_responder(lambda _: LONG_ANSWER)
    return bot, await bot.send(bot.activity(QUESTION))


async def until_rated(bot: TeamsBot, click: dict[str, Any], core: Core) -> Sent:
    """Sends the click until it is recorded: the answer is linked to its message just after the message went
    out, maybe after the turn. A rater's click replaces their earlier one, so a repeat counts once."""
    for _ in range(50):
        answered = await bot.send(click)
        assert (answered.status, answered.body) == (200, "")
        entry = logged(core)
        if entry.up or entry.down:
            return answered
        await asyncio.sleep(0.1)
    raise AssertionError("the click never reached the answer")


async def test_every_stream_update_of_a_hostile_answer_is_inert_text(
    bot: TeamsBot, connector: ConnectorFake, llm: FakeLLM
) -> None:
    llm.word_interval_s = 0.03
    llm.set_responder(lambda _: HOSTILE_ANSWER)

    await bot.send(bot.activity(QUESTION))

    await connector.wait_for_messages(1, timeout=20.0)
    streamed = [
        u for u in connector.stream_updates() if u.stream_info and u.stream_info["streamType"] == "streaming"
    ]
    assert len(streamed) >= 3
    for update in streamed:
        assert teams_live_links(update.text) == [], update.text
        assert TEAMS_MARKUP.search(json.dumps(update.activity, ensure_ascii=False)) is None
        assert invisible(update.text) == []
    assert "evil.example" in streamed[-1].text  # shown, as text
