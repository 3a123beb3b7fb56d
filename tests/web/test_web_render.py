"""Answers as the chat page shows them: the server's HTML, in which only the sources link anywhere.

Each case is what a model or a wiki page may write, rendered as a browser would read it (tests/web/html_check.py):
the tags it would build, the links it would follow, the text it would show."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.web.render import render_draft, render_markdown, render_reply
from bot.app import Core
from rag.types import Reply, Source
from tests.e2e_core import real_core
from tests.fakes.llm_server import FakeLLM
from tests.links import invisible
from tests.test_hostile_replies import EVIL, HOSTILE_PAGE, QUESTION, SCENARIOS
from tests.web.conftest import ALICE, WEB_SETTINGS, bearer, client_of
from tests.web.html_check import Rendered

WIKI = "https://wiki.example.com/wiki"
SOURCES = (
    Source("1", "Printer setup", f"{WIKI}/spaces/IT/pages/1"),
    Source("2", "VPN <b>access</b>", f"{WIKI}/spaces/IT/pages/2?a=1&b=2"),
    Source("3", "Not a web page", "javascript:alert(1)"),
)
# The renderer's own tags: anything else in the output came from the text.
OURS = {
    "p",
    "br",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "hr",
    "a",
    "span",
    "div",
}
OURS |= {"table", "thead", "tbody", "tr", "th", "td"}


@pytest.mark.parametrize(
    ("markdown", "shown", "links"),
    [
        ("Use OPS-PRN [1].", "Use OPS-PRN [1].", [f"{WIKI}/spaces/IT/pages/1"]),
        (
            "See [1, 2] and [2-1].",
            "See [1][2] and [2-1].",
            [f"{WIKI}/spaces/IT/pages/1", f"{WIKI}/spaces/IT/pages/2?a=1&b=2"],
        ),
        ("[3] is no web page; [7] is no source.", "[3] is no web page; [7] is no source.", []),
        ("Indexing: `args[1]`, x[0][1], f()[1].", "Indexing: args[1], x[0][1], f()[1].", []),
        ("[click here](https://evil.example/x)", "click here (https://evil.example/x)", []),
        ("[1](https://evil.example/steal)", "1 (https://evil.example/steal)", []),
        ("![pixel](https://evil.example/p.png)", "pixel (https://evil.example/p.png)", []),
        ("<https://evil.example/angle>", "https://evil.example/angle", []),
        (
            '<a href="https://evil.example">a</a> <img src=x onerror=alert(1)>',
            '<a href="https://evil.example">a</a> <img src=x onerror=alert(1)>',
            [],
        ),
        ("<script>alert(1)</script>", "<script>alert(1)</script>", []),
        ("[r]: https://evil.example/ref\n\nsee [r]", "r: https://evil.example/refsee [r]", []),
        ("```html\n<b>[1]</b>\n```", "<b>[1]</b>", []),
        ("read\u202e me", "read me", []),
    ],
)
def test_text_shows_as_written_and_only_the_sources_link(markdown: str, shown: str, links: list[str]) -> None:
    page = Rendered(render_markdown(markdown, SOURCES))
    assert page.text == shown
    assert page.links == links
    assert set(page.tags) <= OURS and "img" not in page.tags and "script" not in page.tags
    assert {name for name, _ in page.attributes} <= {"class", "href", "title", "target", "rel", "start"}


def test_markdown_formatting_becomes_the_renderers_own_tags() -> None:
    page = Rendered(
        render_markdown(
            "# Setup\n\n**Bold**, *italic*, ~~gone~~ and `code`.\n\n- one\n  - nested\n3. three\n4. four\n\n"
            "> quoted\n\n---\n\n| Queue | Floor |\n| --- | --- |\n| OPS-PRN | 2 |"
        )
    )
    assert page.tags == [
        *["p", "strong", "p", "strong", "em", "del", "code", "ul", "li", "li", "ol", "li", "li"],
        *["blockquote", "hr", "table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td"],
    ]
    assert ("start", "3") in page.attributes


def test_a_reply_lists_its_sources_and_a_draft_links_nothing_yet() -> None:
    reply = Rendered(render_reply(Reply(text="It is OPS-PRN [1].", sources=SOURCES)))
    assert reply.links == [SOURCES[0].url, SOURCES[0].url, SOURCES[1].url]  # the citation, then the list
    assert "VPN <b>access</b>" in reply.text and "b" not in reply.tags
    assert "Not a web page" in reply.text  # listed, without a link
    draft = Rendered(render_draft("It is OPS-PRN [1] and"))
    assert draft.links == [] and draft.text == "It is OPS-PRN [1] and"


def test_a_source_url_is_an_attribute_that_cannot_be_left() -> None:
    quoted = Source("9", "Quote", f'{WIKI}/p/9?x="><script>alert(1)</script>')
    page = Rendered(render_reply(Reply(text="[1]", sources=(quoted,))))
    assert "script" not in page.tags
    assert all(link.startswith(f"{WIKI}/p/9?x=") and '"' not in link for link in page.links)


@pytest.fixture
def hostile_core(tmp_path: Path, e2e_llm: FakeLLM) -> Iterator[Core]:
    with real_core(tmp_path / "data", e2e_llm, pages=[HOSTILE_PAGE], **WEB_SETTINGS) as core:
        yield core


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_the_web_channel_links_only_the_sources_whatever_the_wiki_or_the_model_writes(
    scenario: str, hostile_core: Core, e2e_llm: FakeLLM
) -> None:
    SCENARIOS[scenario](e2e_llm)
    wiki = hostile_core.settings.confluence_url.rstrip("/")
    async with client_of(hostile_core) as web:
        response = await web.post(
            "/query/stream", json={"session_id": "hostile", "query": QUESTION}, headers=bearer(ALICE)
        )
        lines = [line async for line in response.content if line.strip()]
    events = [json.loads(line) for line in lines]
    answer = events[-1]
    for event in events:
        page = Rendered(event["html"])
        assert [link for link in page.links if not link.startswith(wiki + "/")] == []
        assert set(page.tags) <= OURS and invisible(page.text) == []
    final = Rendered(answer["html"])
    assert final.links, "the answer links its source"
    assert all(link in answer["links"] for link in final.links)
    assert EVIL in final.text  # what was written is still shown, as text
