"""What Teams accepts and shows of the bot's AI features, through the real botbuilder stack: the connector fake
refuses what Teams refuses (a stream where it is not allowed, more than 20 citations)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rag import texts
from rag.types import Reply, Source
from tests.fakes.conversation import RecordingConversation

from .conftest import FAST, TeamsBot, start_bot, teams_settings
from .connector_fake import ConnectorFake
from .fake_assistant import VPN_PAGE, FakeAssistant
from .identity import Identity

PAGES = tuple(
    Source(page_id=str(n), title=f"Page {n}", url=f"https://wiki.example.com/p/{n}") for n in range(1, 26)
)


async def test_where_teams_refuses_streaming_the_answer_comes_as_one_message_with_typing_meanwhile(
    teams: TeamsBot, connector: ConnectorFake, assistant: FakeAssistant
) -> None:
    connector.streaming_allowed = False
    assistant.delay_s = 7.0

    await teams.send(teams.activity("How do I get VPN access?"))

    [answer] = await connector.wait_for_messages(1, timeout=15.0)
    [refused] = connector.refused
    assert (refused.status, refused.code) == (403, "ContentStreamNotAllowed")
    assert answer.stream_info is None and f"({VPN_PAGE.url})" in answer.text
    # Without a stream, the plain typing indicator is what tells the user to wait.
    assert connector.typing() and all(t.stream_info is None for t in connector.typing())


async def test_a_command_in_a_personal_chat_is_one_plain_message_without_stream_label_or_buttons(
    teams: TeamsBot, connector: ConnectorFake
) -> None:
    await teams.send(teams.activity("help"))

    [reply] = await connector.wait_for_messages(1)
    assert reply.text == texts.HELP
    assert connector.typing() == []
    assert reply.entities == [] and reply.channel_data == {}


async def test_an_answer_without_a_logged_id_gets_no_feedback_buttons(
    teams: TeamsBot, connector: ConnectorFake
) -> None:
    await teams.send(teams.activity("How do I get VPN access?"))

    [reply] = await connector.wait_for_messages(1)
    assert reply.message_entity is not None
    assert "feedbackLoop" not in reply.channel_data


@pytest.fixture
async def many_pages_bot(identity: Identity, connector: ConnectorFake) -> AsyncIterator[TeamsBot]:
    cited = " ".join(f"[{n}]" for n in range(1, 26))
    assistant = RecordingConversation(lambda question, _: Reply(text=f"See {cited}.", sources=PAGES))
    bot, runner = await start_bot(teams_settings(), assistant, identity, connector, timing=FAST)  # type: ignore[arg-type]
    yield bot
    await runner.cleanup()


async def test_an_answer_citing_25_pages_is_accepted_with_the_20_citations_teams_allows(
    many_pages_bot: TeamsBot, connector: ConnectorFake
) -> None:
    await many_pages_bot.send(many_pages_bot.activity("Which pages cover the VPN?"))

    [reply] = await connector.wait_for_messages(1)
    assert connector.refused == []
    assert reply.message_entity is not None
    assert [c["position"] for c in reply.message_entity["citation"]] == list(range(1, 21))
    assert (
        "https://wiki.example.com/p/20)" in reply.text and "https://wiki.example.com/p/21)" not in reply.text
    )
