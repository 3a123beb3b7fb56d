"""Citations as the user sees them: [n] in the answer links the right page, code is never rewritten,
and a refusal from the model, however it is dressed up, becomes the "not found" reply."""

from __future__ import annotations

import pytest

from rag.answering import EXTRACTIVE_INTRO, NO_ANSWER, PASSAGE_MAX_CHARS, cite, excerpt, extractive
from rag.types import Chunk, Hit

# Passages as retrieval returns them: 1 and 2 come from one page, 3, 4 and 5 from three others.
_PAGES = {"vpn": "VPN access", "laptop": "Laptop setup", "printer": "Printers", "wifi": "Wi-Fi"}
_PASSAGE_PAGES = ["vpn", "vpn", "laptop", "printer", "wifi"]


def _hits(pages: list[str] = _PASSAGE_PAGES) -> list[Hit]:
    return [
        Hit(
            chunk=Chunk(
                chunk_id=f"{page}-{n}",
                page_id=page,
                space="IT",
                title=_PAGES[page],
                url=f"https://wiki.example.com/pages/{page}",
                version=1,
                last_modified="2024-01-01",
                section="",
                text=f"{_PAGES[page]}\n\npassage {n}",
            ),
            score=1.0 / n,
        )
        for n, page in enumerate(pages, start=1)
    ]


def _page_ids(answer: str) -> list[str]:
    return [s.page_id for s in cite(answer, _hits()).sources]


# (model answer, text shown, pages behind [1], [2], ... in order)
CITATIONS = [
    pytest.param("Use the portal [1].", "Use the portal [1].", ["vpn"], id="one citation"),
    pytest.param(
        "Ask IT [3]. Then connect [1] and print [4].",
        "Ask IT [1]. Then connect [2] and print [3].",
        ["laptop", "vpn", "printer"],
        id="renumbered in order of first use",
    ),
    pytest.param(
        "Install the client [1]. Sign in with SSO [2]. Print later [4].",
        "Install the client [1]. Sign in with SSO [1]. Print later [2].",
        ["vpn", "printer"],
        id="passages of one page share its number",
    ),
    pytest.param("Connect first [1][2].", "Connect first [1].", ["vpn"], id="same page twice collapses"),
    pytest.param("Connect first [1][1].", "Connect first [1].", ["vpn"], id="repeated citation collapses"),
    pytest.param("Connect first [1] [2].", "Connect first [1].", ["vpn"], id="spaced repeat collapses"),
    pytest.param("Both [3][1].", "Both [1][2].", ["laptop", "vpn"], id="adjacent pages both kept"),
    pytest.param("See [1, 3] and [2].", "See [1][2] and [1].", ["vpn", "laptop"], id="comma list"),
    pytest.param("See [3,4].", "See [1][2].", ["laptop", "printer"], id="comma list without space"),
    pytest.param("See [3-5].", "See [1][2][3].", ["laptop", "printer", "wifi"], id="hyphen range"),
    pytest.param("See [2–3].", "See [1][2].", ["vpn", "laptop"], id="en dash range"),
    pytest.param("See [1-2].", "See [1].", ["vpn"], id="range within one page"),
    pytest.param("See [1, 3-4][3].", "See [1][2][3].", ["vpn", "laptop", "printer"], id="list and range"),
    pytest.param("It is up.[3] Really,[4] yes:[5]", "It is up.[1] Really,[2] yes:[3]", None, id="punct"),
    pytest.param(
        "Details [1](https://x.example) here [3].",
        "Details [1](https://x.example) here [1].",
        ["laptop"],
        id="markdown link left alone",
    ),
]


@pytest.mark.parametrize(("answer", "shown", "pages"), CITATIONS)
def test_citations_point_at_the_pages_they_name(answer: str, shown: str, pages: list[str] | None) -> None:
    reply = cite(answer, _hits())
    assert reply.text == shown
    assert reply.grounded and reply.mode == "llm"
    if pages is not None:
        assert [s.page_id for s in reply.sources] == pages
    for source in reply.sources:
        assert source.url == f"https://wiki.example.com/pages/{source.page_id}"
        assert source.title == _PAGES[source.page_id]


# (model answer, text shown: everything that is code or not a passage number stays as written). Each answer
# cites passage 3 (laptop); the fenced-block one passage 4 (printer) too.
KEPT_AS_WRITTEN = [
    pytest.param("Read `args[0]` first [3].", "Read `args[0]` first [1].", id="index in inline code"),
    pytest.param("Run `echo ${arr[1]}` [3].", "Run `echo ${arr[1]}` [1].", id="bash array in inline code"),
    pytest.param("Use args[0] [3].", "Use args[0] [1].", id="index zero outside code"),
    pytest.param("Use args[2] [3].", "Use args[2] [1].", id="index glued to identifier"),
    pytest.param("Use ${arr[1]} [3].", "Use ${arr[1]} [1].", id="bash array outside code"),
    pytest.param("Use m[1][2] [3].", "Use m[1][2] [1].", id="two dimensional index"),
    pytest.param("Use f()[1] [3].", "Use f()[1] [1].", id="index after call"),
    pytest.param("Run ``a[`1`]`` [3].", "Run ``a[`1`]`` [1].", id="double tick span"),
    pytest.param(
        "Run this [3]:\n\n```bash\nfor i in 1 2; do echo ${arr[1]} [2]; done\n```\n\nThen reboot [4].",
        "Run this [1]:\n\n```bash\nfor i in 1 2; do echo ${arr[1]} [2]; done\n```\n\nThen reboot [2].",
        id="fenced block",
    ),
    pytest.param(
        "Steps [3]:\n~~~\nx = [1, 2]\n~~~\nDone [3].",
        "Steps [1]:\n~~~\nx = [1, 2]\n~~~\nDone [1].",
        id="tilde fence",
    ),
    pytest.param(
        "Steps [3]:\n```python\nprint(xs [1])\n", "Steps [1]:\n```python\nprint(xs [1])", id="unclosed fence"
    ),
    pytest.param("Only [7] here [3].", "Only [7] here [1].", id="unknown number kept"),
    pytest.param("Use [0] then [3].", "Use [0] then [1].", id="zero kept"),
    pytest.param("Pick [2-9] or [3].", "Pick [2-9] or [1].", id="range past passages kept"),
    pytest.param("Pick [3-1] or [3].", "Pick [3-1] or [1].", id="reversed range kept"),
    pytest.param("Pick [3][7].", "Pick [1][7].", id="unknown number in a run kept"),
]


@pytest.mark.parametrize(("answer", "shown"), KEPT_AS_WRITTEN)
def test_code_and_non_passage_numbers_are_kept_as_written(answer: str, shown: str) -> None:
    reply = cite(answer, _hits())
    assert reply.text == shown
    cited = ["laptop", "printer"] if "reboot" in answer else ["laptop"]
    assert [s.page_id for s in reply.sources] == cited


def test_array_index_in_code_adds_no_source() -> None:
    # `${arr[1]}` once added the VPN page as a source although the answer only cited passage 3.
    assert _page_ids("Run `echo ${arr[1]}` [3].") == ["laptop"]


def test_answer_without_citations_lists_the_top_three_pages() -> None:
    reply = cite("Restart the router and try again.", _hits())
    assert reply.text == "Restart the router and try again."
    assert [s.page_id for s in reply.sources] == ["vpn", "laptop", "printer"]


def test_answer_whose_only_brackets_are_code_lists_the_top_pages() -> None:
    reply = cite("Use `args[1]`.", _hits())
    assert reply.text == "Use `args[1]`."
    assert [s.page_id for s in reply.sources] == ["vpn", "laptop", "printer"]


REFUSALS = [
    pytest.param("NO_ANSWER", id="exact"),
    pytest.param("  NO_ANSWER\n", id="surrounding whitespace"),
    pytest.param("", id="empty"),
    pytest.param("**NO_ANSWER**", id="bold"),
    pytest.param("*NO_ANSWER*", id="italic"),
    pytest.param("__NO_ANSWER__", id="underscore bold"),
    pytest.param("NO_ANSWER.", id="full stop"),
    pytest.param("`NO_ANSWER`", id="code ticks"),
    pytest.param('"NO_ANSWER"', id="quotes"),
    pytest.param("“NO_ANSWER”", id="curly quotes"),
    pytest.param("NO\\_ANSWER", id="markdown escape"),
    pytest.param("```\nNO_ANSWER\n```", id="fenced"),
    pytest.param("> NO_ANSWER", id="quote block"),
    pytest.param("no_answer", id="lower case"),
    pytest.param("NO_ANSWER\nThe passages only cover the VPN client [1].", id="explanation line after"),
    pytest.param("**NO_ANSWER**\n\nThe passages do not mention printers.", id="bold with explanation"),
    pytest.param("NO_ANSWER: the passages do not say how to reset a badge.", id="explanation same line"),
    pytest.param("The passages do not say how to reset a badge.\n\nNO_ANSWER", id="excuse then sentinel"),
    pytest.param("I could not find it. NO_ANSWER", id="sentinel ends the answer"),
]


@pytest.mark.parametrize("answer", REFUSALS)
def test_refusal_in_any_dress_is_not_shown_as_an_answer(answer: str) -> None:
    assert cite(answer, _hits()) is None


NOT_REFUSALS = [
    pytest.param(
        "The bot replies NO_ANSWER when the wiki has nothing [3]. Ask IT then [4].",
        id="mention with citations",
    ),
    pytest.param("Set `mode` to NO_ANSWER to disable replies [3].", id="mention mid sentence"),
    pytest.param("Connect first [3].\n\nIf unsure, the answer is NO_ANSWER", id="ends with it but cited"),
    pytest.param("Set the flag MY_NO_ANSWER to true.", id="part of another name"),
    pytest.param("Disable it with NO_ANSWER_MODE=1 in the config.", id="prefix of another name"),
]


@pytest.mark.parametrize("answer", NOT_REFUSALS)
def test_answer_that_mentions_the_sentinel_is_still_an_answer(answer: str) -> None:
    reply = cite(answer, _hits())
    assert reply.grounded
    assert NO_ANSWER in reply.text


def _passage(page: str, section: str, body: str) -> Hit:
    title = _PAGES[page]
    chunk = Chunk(
        chunk_id=f"{page}-{section}",
        page_id=page,
        space="IT",
        title=title,
        url=f"https://wiki.example.com/pages/{page}",
        version=1,
        last_modified="2024-01-01",
        section=f"{title} > {section}",
        text=f"{title}\n{section}\n\n{body}",
    )
    return Hit(chunk=chunk, score=1.0)


def test_passages_without_a_model_number_each_page_once() -> None:
    reply = extractive(
        [
            _passage("vpn", "From home", "Install the client."),
            _passage("vpn", "Troubleshooting", "Restart it."),
            _passage("laptop", "Setup", "Unbox it."),
        ],
        "en",
        intro=EXTRACTIVE_INTRO,
    )
    assert [line for line in reply.text.splitlines() if line.startswith("[")] == [
        "[1] **VPN access**",
        "[2] **Laptop setup › Setup**",
    ]
    # Each passage of the page keeps its own section line under the one number.
    assert "_From home_\nInstall the client.\n\n_Troubleshooting_\nRestart it." in reply.text
    assert [s.page_id for s in reply.sources] == ["vpn", "laptop"]


def test_a_passage_is_shown_whole() -> None:
    # A warning that ends past 600 characters, as the sample wiki's long procedure steps do.
    body = "Step one. " * 70 + "Warning: never share your token."
    reply = extractive([_passage("vpn", "Steps", body)], "en", intro=EXTRACTIVE_INTRO)
    assert reply.text.endswith(body)


def test_a_passage_too_long_is_cut_after_a_sentence() -> None:
    shown = excerpt("The first sentence is short. " * 60 + "unfinished words " * 200)
    assert shown.endswith("The first sentence is short. …") and len(shown) <= PASSAGE_MAX_CHARS + 2


def test_a_long_code_block_cut_is_closed_again() -> None:
    shown = excerpt("Run this:\n```bash\n" + "kubectl get pods --all-namespaces\n" * 80 + "```\nDone.")
    lines = shown.splitlines()
    assert lines[-2:] == ["```", "…"] and lines[-3] == "kubectl get pods --all-namespaces"
