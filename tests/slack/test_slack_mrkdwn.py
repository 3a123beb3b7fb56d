"""The model's markdown as Slack shows it, and a user's Slack text as the model reads it."""

from __future__ import annotations

import pytest

from adapters.slack.mrkdwn import to_mrkdwn, to_plain
from adapters.slack.render import render_reply, split_mrkdwn
from rag.types import Reply, Source
from tests.links import slack_live_links as live_links

WIKI = Source("1", "Deploy guide", "https://wiki.example.com/pages/1")
VPN = Source("2", "VPN", "https://wiki.example.com/pages/2?a=1&b=2")


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        # A link in the text is its label and its URL as code: only the renderer's own links are live.
        ("[the guide](https://wiki.example.com/x)", "the guide (`https://wiki.example.com/x`)"),
        ("[**bold label**](https://x.example.com)", "bold label (`https://x.example.com`)"),
        ("<https://wiki.example.com/y>", "`https://wiki.example.com/y`"),
        ("[click](javascript:alert(1))", "click (`javascript:alert(1)`)"),
        ("![logo](https://t.example/pixel.png)", "logo (`https://t.example/pixel.png`)"),
        ("see https://t.example/a_(b). Then", "see `https://t.example/a_(b`). Then"),  # the sentence's dot
        ("mail ops@t.example or t.example/x", "mail `ops@t.example` or `t.example/x`"),
        ("run setup.py, e.g. v1.2", "run `setup.py`, e.g. v1.2"),  # any dotted name a client could link
        # A URL glued to a code span ends where the span begins: the span is not lost inside the URL's.
        ("see https://t.example/a`b` now", "see `https://t.example/a``b` now"),
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


@pytest.mark.parametrize(
    "hostile",
    [
        "[click here](https://evil.example/x)",
        "[1](https://evil.example/steal)",  # dressed as a citation
        "see https://evil.example/phish.",
        "<https://evil.example>",
        "<https://evil.example|the official page>",
        "write to evil@evil.example or visit evil.example/login",
        "**www.evil.example**",
        "[**bold** `code`](https://evil.example/x)",
        "a stray ` then https://evil.example/x",  # the stray tick must not pair with ours
        "`` nested ` tick https://evil.example/x ``",
        "[x](<https://evil.example/a b>)",
        "- item https://evil.example/list\n> quote https://evil.example/quote\n# head https://evil.example/h",
    ],
)
def test_no_link_in_the_text_is_live_but_the_sources(hostile: str):
    text = to_mrkdwn(hostile + " [1]", [WIKI])
    assert live_links(text) == [WIKI.url], text
    assert "evil" in text  # shown, as text: the reader still sees what the page or the model wrote


def test_bidi_and_invisible_characters_are_removed_from_text_and_urls():
    text = to_mrkdwn("read\u202e me\u200b https://evil.example/\u202egpj.exe \u2066x\u2069", [WIKI])
    assert text == "read me `https://evil.example/gpj.exe` x"
    # Emoji sequences keep their joiner; a joiner between ASCII letters hides nothing worth keeping.
    assert to_mrkdwn("👩\u200d💻 e\u200dvil") == "👩\u200d💻 evil"


def test_source_links_keep_their_target_with_invisibles_encoded_and_only_http_is_live():
    sources = (
        Source("5", "Gu\u202eide", "https://wiki.example.com/p/\u202e5"),
        Source("6", "Script https://evil.example/t", "javascript:alert(1)"),
    )
    [message] = render_reply(Reply(text="x [1] [2]", sources=sources))
    line = message.blocks[1]["elements"][0]["text"]
    assert "<https://wiki.example.com/p/%E2%80%AE5|[1] Guide>" in line
    assert live_links(line) == ["https://wiki.example.com/p/%E2%80%AE5"]
    assert "\u202e" not in message.text
    section = message.blocks[0]["text"]
    assert live_links(section["text"]) == ["https://wiki.example.com/p/%E2%80%AE5"]  # [2] is no http page


def test_every_mrkdwn_object_is_verbatim_so_slack_adds_no_links_of_its_own():
    [message] = render_reply(Reply(text="x [1]", sources=(WIKI,)))
    texts = [message.blocks[0]["text"], *message.blocks[1]["elements"]]
    assert all(text["verbatim"] is True for text in texts)


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


def test_a_huge_line_is_never_cut_inside_a_code_span_holding_a_url():
    urls = [f"https://evil.example/{n:03d}/" + "p" * (100 * n) for n in range(1, 12)]
    text = to_mrkdwn(" ".join(f"word{n} {url}" for n, url in enumerate(urls)))
    parts = split_mrkdwn(text, limit=700)
    assert len(parts) > 5
    assert all(part.count("`") % 2 == 0 and live_links(part) == [] for part in parts)


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
