"""The standard markdown a streamed answer is sent as: inert whatever the model writes, and only ever growing."""

from __future__ import annotations

import random

import pytest

from adapters.slack.markdown import streamed
from tests.links import slack_live_links, slack_mentions, teams_live_links


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        pytest.param("**Deploy** with `make ship` [1].", "**Deploy** with `make ship` [1].", id="kept"),
        pytest.param(
            "ask <@U0BOB> or <!channel>, <!here>",
            "ask &lt;@U0BOB&gt; or &lt;!channel&gt;, &lt;!here&gt;",
            id="mentions",
        ),
        pytest.param("[click](https://evil.example/x)", "click (`https://evil.example/x`)", id="link"),
        pytest.param(
            "<https://evil.example/s|slack style>", "slack style (`https://evil.example/s`)", id="slack-link"
        ),
        pytest.param(
            "see https://evil.example/bare now", "see `https://evil.example/bare` now", id="bare-url"
        ),
        pytest.param(
            "[1](https://evil.example/steal)", "1 (`https://evil.example/steal`)", id="citation-link"
        ),
        pytest.param("![x](https://evil.example/p.png)", "x (`https://evil.example/p.png`)", id="image"),
        pytest.param("[r]: https://evil.example/ref", "r: `https://evil.example/ref`", id="definition"),
        pytest.param("```py\nif a < b: <@U1>\n```", "```py\nif a &lt; b: &lt;@U1&gt;\n```", id="code-block"),
        pytest.param("```\nnever closed", "```\nnever closed\n```", id="unclosed-fence"),
        pytest.param("read\u202e me", "read me", id="bidi"),
        pytest.param(
            "see https://x.example/a`b` now", "see `https://x.example/a``b` now", id="url-glued-to-code"
        ),
    ],
)
def test_the_text_of_a_stream_is_inert(markdown: str, shown: str) -> None:
    rendered = streamed(markdown, final=True)
    assert rendered == shown
    assert teams_live_links(rendered) == [] and slack_live_links(rendered) == []
    assert slack_mentions(rendered) == [] and "<" not in rendered


@pytest.mark.parametrize(
    ("draft", "shown"),
    [
        pytest.param("The queue is OPS-PRN and", "The queue is OPS-PRN", id="last-word-waits"),
        pytest.param("See [the deploy guide", "See", id="link-label-open"),
        pytest.param("See [the deploy guide](https://x.example/a and", "See", id="link-destination-open"),
        pytest.param("See [the guide]", "See", id="link-may-follow"),
        pytest.param("Run `make ship --now and", "Run", id="code-span-open"),
        pytest.param("Mail <https://x.example/a and", "Mail", id="angle-open"),
        pytest.param("Intro.\n``", "Intro.\n", id="fence-may-open"),
        pytest.param("Intro.\n```python\nprint(1)\npri", "Intro.\n```python\nprint(1)\npri", id="code-lines"),
        pytest.param("```\ncode\n``", "```\ncode\n", id="fence-may-close"),
    ],
)
def test_a_draft_shows_only_what_its_end_cannot_change(draft: str, shown: str) -> None:
    assert streamed(draft) == shown


_PIECES = [
    *("a", "word", " ", " ", "\n", "\n", "\n\n", "  ", "\t", "é", "# ", "- ", "*", "\\", "&", "|"),
    *("```", "```py\n", "~~~", "`", "``", "[", "]", "(", ")", "<", ">", "](", "[1]", "[x]: "),
    *("<@U123>", "<!here>", "https://x.example/a", "mail@x.example", "\u200d"),
]


def test_a_growing_text_renders_as_the_start_of_its_final_rendering() -> None:
    """What was streamed cannot be taken back: every draft's rendering starts the final one."""
    rng = random.Random(14)
    for _ in range(1500):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 30)))
        final = streamed(text, final=True)
        for end in range(len(text) + 1):
            assert final.startswith(streamed(text[:end])), (text, end)
