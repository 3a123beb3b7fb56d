"""Hostile wiki pages and model output through the real Slack and Teams paths (issue 13's acceptance).

A page and a model that write links, markup, mentions and bidi controls; the real core (Confluence fake, sync,
retrieval, LiteLLM over HTTP to the LLM fake); the real Bolt app and the real botbuilder stack. What the Slack Web
API fake and the Bot Framework connector fake received must hold no live link but to a wiki page, no markup or
mention from the text, and no invisible formatting character, whatever the wiki or the model writes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Core
from tests.e2e_core import WikiPage, real_core
from tests.fakes.llm_server import FakeLLM, default_responder
from tests.links import TEAMS_MARKUP, invisible, slack_live_links, slack_mentions, teams_live_links
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_harness import SlackServer
from tests.slack.slack_payloads import CHANNEL, mention
from tests.slack.test_slack_http import wait_answers
from tests.teams.conftest import TeamsBot, start_bot, teams_settings
from tests.teams.connector_fake import ConnectorFake
from tests.teams.identity import Identity, route_to

EVIL = "evil.example"
QUESTION = "what does the zorbix badge policy say?"
HOSTILE_PAGE = WikiPage(
    page_id="9666",
    title="Zorbix badge policy <img src=x onerror=alert(1)> [login](https://evil.example/title) <at>All</at>",
    body=(
        "<p>The zorbix badge policy: every zorbix badge is renewed yearly. "
        "[click here](https://evil.example/wiki) or "
        '<a href="https://evil.example/anchor">the renewal form</a>, see https://evil.example/phish or '
        "&lt;https://evil.example/angle&gt;. &lt;img src=x onerror=alert(1)&gt; "
        "&lt;a href=https://evil.example/a&gt;x&lt;/a&gt; &lt;at&gt;Everyone&lt;/at&gt; &lt;!channel&gt; "
        "&lt;@U123&gt; zorbix\u202e badge at https://evil.example/\u202egpj.exe</p>"
    ),
)
HOSTILE_ANSWER = (
    "The zorbix badge is renewed yearly [1]. [click here](https://evil.example/x), "
    "[1](https://evil.example/steal), [the official page](https://evil.example/phish), "
    "https://evil.example/bare, <https://evil.example>, <https://evil.example/s|slack style>, "
    "<!channel> <@U123> <img src=x onerror=alert(1)> <a href='https://evil.example/a'>a</a> <at>Everyone</at> "
    "![x](https://evil.example/pixel.png) read\u202e me https://evil.example/\u202egpj.exe\n\n"
    "[r]: https://evil.example/ref\n\nsee [r]"
)


def hostile_model(request: dict[str, Any]) -> str:
    return HOSTILE_ANSWER


def extractive_only(llm: FakeLLM) -> None:
    llm.fail(500, times=10)  # the model is down: the answer is the page's passages themselves


# The model writes the hostile text; the model quotes the hostile page; no model, the page's passages as they are.
SCENARIOS = {
    "model": lambda llm: llm.set_responder(hostile_model),
    "wiki-through-the-model": lambda llm: llm.set_responder(default_responder),
    "wiki-extractive": extractive_only,
}


def assert_only_wiki_links(targets: list[str], wiki_url: str) -> None:
    assert targets, "the answer should link its source"
    assert [t for t in targets if not t.startswith(wiki_url + "/")] == []


@pytest.fixture
def core(tmp_path: Path, e2e_llm: FakeLLM) -> Iterator[Core]:
    with real_core(tmp_path / "data", e2e_llm, pages=[HOSTILE_PAGE]) as core:
        yield core


def wiki_url(core: Core) -> str:
    return core.settings.confluence_url.rstrip("/")


@pytest.fixture
async def slack(core: Core) -> AsyncIterator[SlackServer]:
    fake = FakeSlack()
    await fake.start()
    server = SlackServer(fake, core.assistant)
    await server.start()
    yield server
    await server.close()
    await fake.close()


@pytest.fixture
async def teams(identity: Identity, core: Core, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TeamsBot]:
    route_to(identity, monkeypatch)
    connector = await ConnectorFake().start()
    bot, runner = await start_bot(teams_settings(), core.assistant, identity, connector)  # type: ignore[arg-type]
    yield bot
    await runner.cleanup()
    await connector.stop()


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_slack_links_only_the_sources_and_pings_nobody(
    scenario: str, slack: SlackServer, core: Core, e2e_llm: FakeLLM
) -> None:
    SCENARIOS[scenario](e2e_llm)
    event = mention(QUESTION)
    await slack.event(event)
    [reply] = await wait_answers(slack.fake, CHANNEL, event["ts"], timeout=20)

    shown = [reply.text, *(_mrkdwn_texts(reply.blocks))]
    assert_only_wiki_links([t for text in shown for t in slack_live_links(text)], wiki_url(core))
    if reply.stream:  # a streamed answer's text is standard markdown: read as such, it links nothing either
        assert teams_live_links(reply.text) == []
        assert "<" not in reply.text
    assert scenario == "wiki-extractive" or reply.stream, "a model's answer in a thread is streamed"
    assert [m for text in shown for m in slack_mentions(text)] == []
    assert invisible(reply.everything) == []
    assert EVIL in reply.text  # what was written is still shown, as text


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_teams_links_only_the_sources_and_passes_no_markup(
    scenario: str, teams: TeamsBot, core: Core, e2e_llm: FakeLLM
) -> None:
    SCENARIOS[scenario](e2e_llm)
    await teams.send(teams.activity(QUESTION))
    [posted] = await teams.connector.wait_for_messages(1, timeout=20)

    activity = json.dumps(posted.activity, ensure_ascii=False)
    citations = [
        c["appearance"] for e in posted.activity.get("entities") or [] for c in e.get("citation", [])
    ]
    assert_only_wiki_links(teams_live_links(posted.text), wiki_url(core))
    assert_only_wiki_links([c["url"] for c in citations if "url" in c], wiki_url(core))
    assert TEAMS_MARKUP.search(activity) is None
    assert invisible(activity) == []
    assert EVIL in posted.text


def _mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    texts = [block["text"]["text"] for block in blocks if "text" in block]
    return texts + [e["text"] for block in blocks for e in block.get("elements", []) if "text" in e]
