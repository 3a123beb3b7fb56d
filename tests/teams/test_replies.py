"""Reply → Teams message: citations Teams renders, and links every client shows."""

from __future__ import annotations

import json

import pytest

from adapters.teams.markdown import to_teams_markdown
from adapters.teams.replies import MAX_CITATIONS, answer_activity, reply_activity
from adapters.teams.streaming import settled
from rag.types import Reply, Source
from tests.links import TEAMS_MARKUP, invisible
from tests.links import teams_live_links as live_links


def sources(n: int) -> tuple[Source, ...]:
    return tuple(
        Source(page_id=str(i), title=f"Page [{i}]", url=f"https://wiki.example.com/p/{i}") for i in range(n)
    )


def test_answer_carries_markdown_links_and_a_citation_per_source() -> None:
    activity = answer_activity(Reply(text="Use the portal [1][2].", sources=sources(2))).serialize()

    assert activity["textFormat"] == "markdown"
    assert "[Page (0)](https://wiki.example.com/p/0)" in activity["text"]
    [entity] = activity["entities"]
    assert entity["@type"] == "Message"
    assert entity["additionalType"] == ["AIGeneratedContent"]
    assert [c["position"] for c in entity["citation"]] == [1, 2]
    assert entity["citation"][1]["appearance"]["url"] == "https://wiki.example.com/p/1"
    assert all(len(c["appearance"]["abstract"]) <= 160 for c in entity["citation"])


def test_at_most_twenty_citations_as_teams_allows_and_the_sources_list_follows() -> None:
    activity = answer_activity(Reply(text="Many pages.", sources=sources(25))).serialize()
    assert MAX_CITATIONS == 20
    assert len(activity["entities"][0]["citation"]) == 20
    assert "https://wiki.example.com/p/19" in activity["text"]
    assert "https://wiki.example.com/p/20" not in activity["text"]


def test_an_answer_without_sources_has_no_citation_entity_and_extractive_is_not_labelled_ai() -> None:
    plain = answer_activity(Reply(text="I could not find this in the wiki.", grounded=False, mode="refusal"))
    assert not plain.serialize().get("entities")
    extractive = answer_activity(Reply(text="From the page [1].", sources=sources(1), mode="extractive"))
    assert "additionalType" not in extractive.serialize()["entities"][0]


def test_the_models_no_answer_is_our_sentence_and_carries_no_ai_label() -> None:
    not_found = answer_activity(Reply(text="I couldn't find this in the wiki.", grounded=False, mode="llm"))
    assert not not_found.serialize().get("entities")


def test_feedback_buttons_only_on_an_answer_the_log_holds() -> None:
    logged = reply_activity(Reply(text="Use the portal [1].", sources=sources(1), answer_id="a1")).serialize()
    assert logged["channelData"] == {"feedbackLoop": {"type": "default"}}
    unlogged = reply_activity(Reply(text="Use the portal [1].", sources=sources(1))).serialize()
    assert "channelData" not in unlogged
    notice = reply_activity(Reply(text="Done.", grounded=False, mode="refusal", answer_id="a2")).serialize()
    assert "channelData" not in notice and not notice.get("entities")


@pytest.mark.parametrize(
    ("draft", "shown"),
    [
        ("add it with `lpadmin -p", "add it with"),  # the open code span waits for its closing tick
        ("use `a` and `b", "use `a` and"),
        ("use `a` and `b`", "use `a` and `b`"),
        ("```sh\nls `x", "```sh\nls `x"),  # inside a fence a tick is code already
        ("```\ncode\n```\nthen `x", "```\ncode\n```\nthen"),
    ],
)
def test_a_draft_streams_without_a_code_span_still_open(draft: str, shown: str) -> None:
    assert settled(draft) == shown


WIKI = Source("1", "Deploy guide", "https://wiki.example.com/p/1")


@pytest.mark.parametrize(
    "hostile",
    [
        "[click here](https://evil.example/x)",
        "[1](https://evil.example/steal)",  # dressed as a citation
        "![pixel](https://evil.example/p.png)",
        "see https://evil.example/phish.",
        "<https://evil.example>",
        "write to evil@evil.example or visit evil.example/login",
        "[a [nested] label](https://evil.example/n)",
        "[ref]: https://evil.example/r\n\nsee [ref]",
        "a stray ` then https://evil.example/x",  # the stray tick must not pair with ours
        "escaped \\`https://evil.example/x`",  # the backslash must not cancel our code span
        '<a href="https://evil.example/a">x</a>',
        "- item https://evil.example/list\n> quote https://evil.example/quote",
    ],
)
def test_no_link_in_the_text_is_live_but_the_sources(hostile: str) -> None:
    text = answer_activity(Reply(text=hostile + " [1]", sources=(WIKI,))).serialize()["text"]
    assert live_links(text) == [WIKI.url], text
    assert "evil" in text  # shown, as text


@pytest.mark.parametrize(
    "hostile",
    [
        "<img src=x onerror=alert(1)>",
        '<a href="https://evil.example">click</a>',
        "<at>Everyone</at> please read",
        "```html\n<img src=x onerror=alert(1)>\n```",
        "`<at>Everyone</at>`",
    ],
)
def test_no_markup_from_the_text_reaches_teams(hostile: str) -> None:
    for reply in (Reply(text=hostile, sources=(WIKI,)), Reply.notice(hostile)):
        text = reply_activity(reply).serialize()["text"]
        assert not TEAMS_MARKUP.search(text), text
        assert "at&gt;Everyone" in text or "img src" in text or "href" in text  # still shown, escaped


def test_a_title_with_markup_is_escaped_in_the_sources_list_and_plain_in_the_citation() -> None:
    evil = Source("9", "<img src=x onerror=alert(1)> [x](https://evil.example) <at>All</at>\u202e", WIKI.url)
    activity = answer_activity(Reply(text="See [1].", sources=(evil,))).serialize()
    assert not TEAMS_MARKUP.search(activity["text"])
    assert live_links(activity["text"]) == [WIKI.url]
    appearance = activity["entities"][0]["citation"][0]["appearance"]
    assert appearance["name"] == "x All"
    assert "<" not in appearance["abstract"] and "](" not in appearance["abstract"]
    assert appearance["url"] == WIKI.url
    assert invisible(json.dumps(activity, ensure_ascii=False)) == []


def test_a_source_url_is_live_only_when_http_and_keeps_its_target_with_invisibles_encoded() -> None:
    odd = (
        Source("1", "Script", "javascript:alert(1)"),
        Source("2", "Bidi", "https://wiki.example.com/p/\u202e2 (draft)"),
    )
    activity = answer_activity(Reply(text="x [1] [2]", sources=odd)).serialize()
    encoded = "https://wiki.example.com/p/%E2%80%AE2%20%28draft%29"
    assert live_links(activity["text"]) == [encoded]
    first, second = (c["appearance"] for c in activity["entities"][0]["citation"])
    assert "url" not in first and second["url"] == encoded


def test_bidi_and_invisible_characters_are_removed_from_the_text() -> None:
    text = answer_activity(Reply(text="a\u202eb\u200b c\u2066 https://evil.example/\u202egpj.exe")).text
    assert text == "ab c `https://evil.example/gpj.exe`"


def test_markdown_formatting_and_code_survive() -> None:
    text = to_teams_markdown("**bold** _it_ a < b & c\n\n````py\n```\nif a < b: pass\n````\n`x & y`")
    assert text == "**bold** _it_ a &lt; b &amp; c\n\n````py\n```\nif a &lt; b: pass\n````\n`x & y`"
