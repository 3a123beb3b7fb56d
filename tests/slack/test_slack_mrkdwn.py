"""The model's markdown as Slack shows it, and a user's Slack text as the model reads it."""

from __future__ import annotations

import pytest

from adapters.slack.mrkdwn import to_mrkdwn, to_plain
from adapters.slack.render import render_reply, split_mrkdwn
from rag.types import Reply, Source

WIKI = Source("1", "Deploy guide", "https://wiki.example.com/pages/1")
VPN = Source("2", "VPN", "https://wiki.example.com/pages/2?a=1&b=2")


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("[the guide](https://wiki.example.com/x)", "<https://wiki.example.com/x|the guide>"),
        ("[**bold label**](https://x.example.com)", "<https://x.example.com|bold label>"),
        ("<https://wiki.example.com/y>", "<https://wiki.example.com/y|https://wiki.example.com/y>"),
        ("[click](javascript:alert(1))", "[click](javascript:alert(1))"),  # text, never a live link
        ("[click](javascript:void)", "click"),
        ("# Title\n## Sub", "*Title*\n*Sub*"),
        ("- one\n- two\n  - nested", "• one\n• two\n    ◦ nested"),
        ("* star bullet", "• star bullet"),
        ("1. first\n2) second", "1. first\n2. second"),
        ("> quoted **text**", ">quoted *text*"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("<!channel> hi <@U123>", "&lt;!channel&gt; hi &lt;@U123&gt;"),
        ("use `a < b` here", "use `a &lt; b` here"),
        (
            "```python\nif a < b:\n    print('**not bold**')\n```",
            "```\nif a &lt; b:\n    print('**not bold**')\n```",
        ),
        ("```\nunclosed", "```\nunclosed\n```"),
        ("---", "──────────"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("snake_case_name", "snake_case_name"),
    ],
)
def test_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str):
    assert to_mrkdwn(markdown) == mrkdwn


def test_citations_link_to_their_pages_and_unknown_numbers_stay_text():
    text = to_mrkdwn("Deploy with the pipeline [1]. VPN first [2, 1]. Not a source [7].", [WIKI, VPN])
    assert "pipeline <https://wiki.example.com/pages/1|[1]>." in text
    assert "<https://wiki.example.com/pages/2?a=1&amp;b=2|[2]><https://wiki.example.com/pages/1|[1]>" in text
    assert "Not a source [7]." in text


def test_a_reply_carries_a_sources_context_block_with_every_page_link():
    [message] = render_reply(Reply(text="Use the pipeline [1].", sources=(WIKI, VPN)))
    section, context = message.blocks
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert context["type"] == "context"
    sources = context["elements"][0]["text"]
    assert "<https://wiki.example.com/pages/1|[1] Deploy guide>" in sources
    assert "<https://wiki.example.com/pages/2?a=1&amp;b=2|[2] VPN>" in sources
    assert "Deploy guide" in message.text  # the notification fallback names the sources too


def test_a_reply_without_sources_has_no_sources_block():
    [message] = render_reply(Reply(text="I could not find that in the wiki.", grounded=False))
    assert [block["type"] for block in message.blocks] == ["section"]


def test_a_title_cannot_break_the_link_syntax():
    evil = Source("3", "a|b>c <!here>", "https://wiki.example.com/p?q=<x>|y")
    [message] = render_reply(Reply(text="x [1]", sources=(evil,)))
    sources = message.blocks[1]["elements"][0]["text"]
    assert "<!here>" not in sources
    assert sources.count("<") == sources.count(">") == 1  # one link, its label escaped
    assert sources.startswith("*Sources:* <https://wiki.example.com/p?q=%3Cx%3E%7Cy|")


def test_splitting_keeps_every_line_and_code_blocks_balanced():
    text = "intro\n```\n" + "\n".join(f"line {n:04d} " + "x" * 40 for n in range(200)) + "\n```\noutro"
    parts = split_mrkdwn(text, limit=1000)
    assert len(parts) > 5
    assert all(len(part) <= 1000 for part in parts)
    assert all(part.count("```") % 2 == 0 for part in parts)
    joined = "\n".join(parts)
    assert all(f"line {n:04d}" in joined for n in range(200))
    assert parts[0].startswith("intro") and parts[-1].endswith("outro")


def test_a_single_huge_line_is_wrapped_without_cutting_a_link():
    link = "<https://wiki.example.com/pages/1|the guide>"
    text = ("word " * 150 + link + " ") * 6
    parts = split_mrkdwn(text, limit=800)
    assert all(len(part) <= 800 for part in parts)
    assert sum(part.count(link) for part in parts) == 6


@pytest.mark.parametrize(
    ("slack_text", "plain"),
    [
        ("<@U0WIKIBOT> how do I deploy?", "how do I deploy?"),
        ("<@U0WIKIBOT|wikibot> hi", "hi"),
        ("ask <@U0BOB> or <@U0CAROL|carol>", "ask @U0BOB or @carol"),
        ("see <#C0OPS|ops> and <#C0DEV>", "see #ops and #C0DEV"),
        ("<!here> help", "@here help"),
        ("<!subteam^S123|@devs> ping", "@devs ping"),
        (
            "<https://x.example.com|the page> and <https://y.example.com>",
            "the page (https://x.example.com) and https://y.example.com",
        ),
        ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"),
        ("<mailto:ops@example.com|ops@example.com>", "ops@example.com (mailto:ops@example.com)"),
    ],
)
def test_slack_text_becomes_plain_for_the_model(slack_text: str, plain: str):
    assert to_plain(slack_text, bot_user_id="U0WIKIBOT") == plain
