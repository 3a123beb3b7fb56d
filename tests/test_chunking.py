"""Chunks a retriever can use: bounded, stable, self-describing, with code and rows kept whole."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest

from bot.demo.confluence_fake import SAMPLE_WIKI_DIR
from rag.chunking import PageLimits, chunk_bounded, chunk_page, embedding_text
from rag.types import Page

SAMPLE_WIKI = SAMPLE_WIKI_DIR


def page(body: str, **overrides: object) -> Page:
    values: dict[str, object] = {
        "page_id": "1001",
        "space": "IT",
        "title": "VPN Access",
        "version": 7,
        "url": "https://wiki.example/spaces/IT/pages/1001",
        "body": body,
        "last_modified": "2026-10-01T09:30:00Z",
    }
    values.update(overrides)
    return Page(**values)  # type: ignore[arg-type]


def code_macro(body: str, language: str = "bash") -> str:
    return (
        f'<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">{language}</ac:parameter>'
        f"<ac:plain-text-body><![CDATA[{body}]]></ac:plain-text-body></ac:structured-macro>"
    )


def words(text: str) -> int:
    """A stand-in for a tokenizer: words and punctuation marks count one each."""
    return len(re.findall(r"\w+|[^\w\s]", text))


LONG_PAGE = (
    "<p>GlobalProtect is the only supported VPN client.</p>"
    "<h1>Installation</h1>"
    + "".join(
        f"<p>Paragraph {n} explains one more detail of installing the client on a managed laptop, "
        f"with enough words to need several chunks.</p>"
        for n in range(30)
    )
    + "<h2>Linux</h2>"
    + code_macro("sudo apt-get install globalprotect\n\n# then\nglobalprotect connect --portal vpn.example")
    + "<h2>Troubleshooting</h2><table><tbody><tr><th>Symptom</th><th>Fix</th></tr>"
    + "".join(f"<tr><td>Error GP-{n}</td><td>Restart the agent and retry {n}</td></tr>" for n in range(40))
    + "</tbody></table>"
)


@pytest.mark.parametrize("chunk_size", [120, 300, 800, 2000])
@pytest.mark.parametrize("length_function", [len, words])
def test_every_chunk_including_its_header_fits_the_size(
    chunk_size: int, length_function: Callable[[str], int]
) -> None:
    size = chunk_size if length_function is len else chunk_size // 4
    chunks = chunk_page(
        page(LONG_PAGE), chunk_size=size, chunk_overlap=size // 10, length_function=length_function
    )
    assert len(chunks) > 1
    assert all(length_function(c.text) <= size for c in chunks)


def test_a_tiny_chunk_size_still_holds_even_with_a_long_title() -> None:
    chunks = chunk_page(page(LONG_PAGE, title="A very long page title " * 10), chunk_size=60, chunk_overlap=0)
    assert chunks
    assert all(len(c.text) <= 60 for c in chunks)


def test_ids_are_stable_and_sequential_across_runs() -> None:
    first = chunk_page(page(LONG_PAGE), chunk_size=400, chunk_overlap=40)
    second = chunk_page(page(LONG_PAGE), chunk_size=400, chunk_overlap=40)
    assert first == second
    assert [c.chunk_id for c in first] == [f"1001:{n}" for n in range(len(first))]


def test_chunks_carry_page_metadata_and_their_section() -> None:
    chunks = chunk_page(page(LONG_PAGE), chunk_size=400, chunk_overlap=40)
    last_rows = next(c for c in chunks if "GP-39" in c.text)
    assert last_rows.section == "Installation > Troubleshooting"
    assert last_rows.metadata() == {
        "page_id": "1001",
        "space": "IT",
        "title": "VPN Access",
        "url": "https://wiki.example/spaces/IT/pages/1001",
        "version": 7,
        "last_modified": "2026-10-01T09:30:00Z",
        "section": "Installation > Troubleshooting",
    }
    # The title once, then the section trail.
    assert last_rows.text.startswith("VPN Access\nInstallation > Troubleshooting\n\n")


def test_header_omits_empty_lines() -> None:
    [chunk] = chunk_page(page("<p>Just text.</p>"), chunk_size=500, chunk_overlap=0)
    assert chunk.text == "VPN Access\n\nJust text."
    assert chunk.section == ""


def test_code_block_with_blank_lines_stays_whole_when_it_fits() -> None:
    code = "step one\n\nstep two\n\n\nstep three"
    body = "<h1>Setup</h1>" + "<p>Some words before the code block.</p>" * 6 + code_macro(code)
    chunks = chunk_page(page(body), chunk_size=260, chunk_overlap=30)
    assert any(f"```bash\n{code}\n```" in c.text for c in chunks)


def test_oversized_code_is_split_into_valid_fences_that_keep_every_line() -> None:
    code = "\n".join(f"    echo 'line {n}'  # indented" for n in range(80))
    chunks = chunk_page(page(code_macro(code)), chunk_size=400, chunk_overlap=0)
    assert len(chunks) > 2
    for chunk in chunks:
        body = chunk.text.split("\n\n", 1)[1]
        assert body.startswith("```bash\n") and body.endswith("\n```")
    emitted = "\n".join(c.text for c in chunks)
    for line in code.split("\n"):
        assert line in emitted


def test_table_rows_are_never_cut_when_each_row_fits() -> None:
    chunks = chunk_page(page(LONG_PAGE), chunk_size=300, chunk_overlap=60)
    rows = [c for c in chunks if c.section == "Installation > Troubleshooting"]
    assert len(rows) > 1
    for chunk in rows:
        for line in chunk.text.split("\n\n", 1)[1].split("\n"):
            assert re.fullmatch(r"Symptom: Error GP-\d+; Fix: Restart the agent and retry \d+", line)


def test_consecutive_chunks_of_a_long_section_overlap() -> None:
    chunks = [
        c
        for c in chunk_page(page(LONG_PAGE), chunk_size=400, chunk_overlap=150)
        if c.section == "Installation"
    ]
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        last_line = before.text.rsplit("\n", 1)[1]
        assert last_line in after.text


def test_many_tiny_headings_do_not_make_confetti() -> None:
    faq = "<h1>FAQ</h1>" + "".join(f"<h2>Question {n}?</h2><p>Answer {n}.</p>" for n in range(12))
    chunks = chunk_page(page(faq), chunk_size=1000, chunk_overlap=0)
    assert len(chunks) == 1
    assert chunks[0].section == "FAQ"
    assert "## Question 3?\nAnswer 3." in chunks[0].text


def test_short_sections_share_a_chunk_that_names_every_heading() -> None:
    body = "<h1>Install</h1><h2>Linux</h2><p>Run apt.</p><h1>Licensing</h1><p>Free for staff.</p>"
    [chunk] = chunk_page(page(body), chunk_size=1000, chunk_overlap=0)
    # Nothing is shared by both trails: the citation names where the chunk starts, the text every heading.
    assert chunk.section == "Install > Linux"
    assert chunk.text == "VPN Access\n\n# Install\n## Linux\nRun apt.\n# Licensing\nFree for staff."


def test_sections_fill_a_chunk_up_to_its_size_and_no_further() -> None:
    paragraph = "<p>" + "Substantial content about the topic. " * 10 + "</p>"
    body = f"<h1>Guide</h1><h2>Alpha</h2>{paragraph}<h2>Beta</h2>{paragraph}"
    [both] = chunk_page(page(body), chunk_size=1000, chunk_overlap=0)
    assert both.section == "Guide"  # the trail both sections share
    assert both.text.startswith("VPN Access\nGuide\n\n## Alpha\nSubstantial")
    assert "topic.\n## Beta\nSubstantial" in both.text
    # Either section fits a 600-character chunk, the two together do not: each keeps its own.
    apart = chunk_page(page(body), chunk_size=600, chunk_overlap=0)
    assert [c.section for c in apart] == ["Guide > Alpha", "Guide > Beta"]


def test_a_manual_page_of_short_sections_makes_few_full_chunks() -> None:
    names = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "SEE ALSO", "GIT"]
    body = "".join(
        f"<h1>{name}</h1><p>What the {name.lower()} section of a manual page says.</p>" for name in names
    )
    chunks = chunk_page(page(body, title="git-notes"), chunk_size=300, chunk_overlap=0)
    assert len(chunks) == 2  # one per section would be 7
    assert all(len(c.text) <= 300 for c in chunks)
    for chunk in chunks:
        # A chunk's citation names the section it starts with; its text has every heading it crosses.
        assert chunk.text.startswith(f"git-notes\n\n# {chunk.section}\nWhat the")
    assert [
        n for n in names if any(f"# {n}\nWhat the {n.lower()} section" in c.text for c in chunks)
    ] == names


def test_a_long_section_still_splits_and_its_tail_takes_in_the_next_short_one() -> None:
    body = (
        "<h1>Install</h1>"
        + "".join(f"<p>Step {n} of installing the client on a managed laptop.</p>" for n in range(20))
        + "<h1>Support</h1><p>Call the desk.</p>"
    )
    chunks = chunk_page(page(body), chunk_size=400, chunk_overlap=0)
    assert len(chunks) >= 3
    assert all(len(c.text) <= 400 for c in chunks)
    assert [c.section for c in chunks[:-1]] == ["Install"] * (len(chunks) - 1)
    assert chunks[-1].text.endswith(
        "Step 19 of installing the client on a managed laptop.\n# Support\nCall the desk."
    )


def dense_tokens(text: str) -> int:
    """Like the app's length: characters for short texts; longer ones count a hex digit run per 2 chars."""
    if len(text) <= 60:
        return len(text)
    return max(len(text), sum(len(w) // 2 + 1 for w in re.findall(r"\w+|[^\w\s]", text)) * 3)


def test_dense_code_is_cut_into_whole_lines_not_into_fragments() -> None:
    # Short lines measure as characters, the lines together as many more tokens: the sum misleads.
    code = "\n".join(f">>> uuid.UUID('{n:08x}-f86e-11da-bd1a-00112444be1e')" for n in range(40))
    body = "<h1>Example</h1><p>Typical usage:</p>" + code_macro(code, "python")
    chunks = chunk_page(
        page(body, title="uuid"), chunk_size=600, chunk_overlap=0, length_function=dense_tokens
    )
    assert all(dense_tokens(c.text) <= 600 for c in chunks)
    emitted = "\n".join(c.text for c in chunks)
    for line in code.split("\n"):
        assert line in emitted
    assert len(chunks) <= 3 * len(code) // 600 + 2, [len(c.text) for c in chunks]
    for chunk in chunks:
        body_text = chunk.text.split("\n\n", 1)[1]
        assert body_text.endswith("```") and body_text.count("```") == 2


def test_empty_page_is_still_findable_by_its_title() -> None:
    [chunk] = chunk_page(page('<ac:structured-macro ac:name="children" />'), chunk_size=500, chunk_overlap=0)
    assert chunk.chunk_id == "1001:0"
    assert chunk.text == "VPN Access"
    assert chunk_page(page("", title="  "), chunk_size=500, chunk_overlap=0) == []


def test_french_accents_survive_chunking() -> None:
    body = "<h1>Télétravail</h1><p>Le salarié doit être joignable de 9&nbsp;h à 17&nbsp;h.</p>"
    [chunk] = chunk_page(page(body, title="Règles du télétravail"), chunk_size=500, chunk_overlap=0)
    assert chunk.text.startswith("Règles du télétravail\nTélétravail\n\n")
    assert "Télétravail\n\nLe salarié doit être joignable de 9 h à 17 h." in chunk.text


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_nonsense_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        chunk_page(page("<p>x</p>"), chunk_size=size, chunk_overlap=overlap)


def test_malformed_body_still_chunks() -> None:
    chunks = chunk_page(page("<p>broken <b>markup & stuff<p>more</div>"), chunk_size=500, chunk_overlap=0)
    assert "broken markup & stuff" in chunks[0].text


@pytest.mark.skipif(not SAMPLE_WIKI.is_dir(), reason="sample wiki not present")
def test_every_sample_page_chunks_and_keeps_its_code() -> None:
    files = sorted(SAMPLE_WIKI.glob("*.xml"))
    assert files
    cdata = re.compile(
        r'ac:name="(?:code|noformat)".*?<ac:plain-text-body><!\[CDATA\[(.*?)\]\]></ac:plain-text-body>', re.S
    )
    for n, path in enumerate(files):
        body = path.read_text(encoding="utf-8")
        chunks = chunk_page(page(body, page_id=str(n), title=path.stem), chunk_size=1200, chunk_overlap=150)
        assert chunks, path.name
        assert all(len(c.text) <= 1200 for c in chunks), path.name
        for code in cdata.findall(body):
            code = code.strip("\r\n")
            assert any(code in c.text for c in chunks), f"{path.name}: code lost: {code[:60]!r}"


def test_a_lead_in_line_stays_with_the_code_it_introduces() -> None:
    filler = "".join(
        f"<p>Sentence {n} about preparing the gateway for its monthly window.</p>" for n in range(8)
    )
    body = (
        f"<h1>Before the window</h1>{filler}<ol><li>Take a configuration backup:</li></ol>"
        + code_macro("sudo -u swiftadm saa_system backup --full")
        + f"{filler}<p>~/.zshrc (macOS)</p>"
        + code_macro("export HTTPS_PROXY=http://proxy:8080")
    )
    for size in range(200, 420, 20):
        for chunk in chunk_page(page(body), chunk_size=size, chunk_overlap=0):
            if "saa_system backup" in chunk.text:
                assert "1. Take a configuration backup:\n```bash\nsudo" in chunk.text, size
            if "HTTPS_PROXY" in chunk.text:
                assert "~/.zshrc (macOS)\n```bash\n" in chunk.text, size
            assert not chunk.text.endswith(":"), size


def test_the_embedder_reads_the_words_without_markdown_punctuation() -> None:
    body = "<h1>Setup</h1><h2>Linux</h2><p>Run <code>vpn up</code> first.</p>" + code_macro("vpn status")
    [chunk] = chunk_page(page(body), chunk_size=500, chunk_overlap=0)
    assert "`vpn up`" in chunk.text and "```bash\nvpn status\n```" in chunk.text
    assert embedding_text(chunk.text) == "VPN Access\nSetup > Linux\n\nRun vpn up first.\nbash\nvpn status\n"
    assert embedding_text("## What is `kubectl`? #hashtag") == "What is kubectl? #hashtag"


def test_the_embedder_reads_a_table_with_its_column_names_once() -> None:
    table = (
        "<table><tr><th>Term</th><th>Stands for</th></tr>"
        "<tr><td>BIC</td><td>Business Identifier Code</td></tr>"
        "<tr><td>CAB</td><td>Change Advisory Board</td></tr></table>"
        "<p>Note: rotate keys; Owner: security team</p>"
    )
    [chunk] = chunk_page(page(table), chunk_size=500, chunk_overlap=0)
    # The model and the reader get every row's column names; the embedder reads them once.
    assert "Term: CAB; Stands for: Change Advisory Board" in chunk.text
    assert embedding_text(chunk.text).endswith(
        "Term: BIC; Stands for: Business Identifier Code\nCAB; Change Advisory Board\n"
        "Note: rotate keys; Owner: security team"
    )


def test_a_first_heading_that_repeats_the_title_is_not_embedded_twice() -> None:
    intro, linux_text = "Remote access for staff. " * 6, "Use openconnect with the portal address. " * 4
    body = f"<h1>VPN Access</h1><p>{intro}</p><h2>Linux</h2><p>{linux_text}</p>"
    chunks = chunk_page(page(body), chunk_size=260, chunk_overlap=0)
    linux = next(c for c in chunks if "openconnect" in c.text)
    assert linux.text.startswith("VPN Access\nLinux\n\n")
    assert linux.section == "VPN Access > Linux"
    # The heading may be the start of a longer title ("VPN Access (Lumen Bank)"): still said once.
    titled = chunk_page(page(body, title="VPN Access (Lumen Bank)"), chunk_size=260, chunk_overlap=0)
    assert next(c for c in titled if "openconnect" in c.text).text.startswith(
        "VPN Access (Lumen Bank)\nLinux\n\n"
    )
    # A heading that is not the title stays in the trail.
    other = chunk_page(page(body, title="Remote access"), chunk_size=260, chunk_overlap=0)
    assert next(c for c in other if "openconnect" in c.text).text.startswith(
        "Remote access\nVPN Access > Linux\n\n"
    )


# --- bounded work per page ---------------------------------------------------------------------------------


def scaled_tokens(text: str) -> int:
    """Like the production length over a 256-token window at chunk size 1,000: a short text counts its
    characters (it cannot overflow), a longer one its stand-in tokens at 4 characters each."""
    return len(text) if len(text) <= 254 else max(len(text), 4 * words(text))


def test_a_page_within_its_limits_is_chunked_whole() -> None:
    limits = PageLimits(max_chars=len(LONG_PAGE), max_chunks=100)
    bounded = chunk_bounded(page(LONG_PAGE), limits=limits, chunk_size=400, chunk_overlap=40)
    assert bounded.cut == ()
    assert bounded.chunks == chunk_page(page(LONG_PAGE), chunk_size=400, chunk_overlap=40)


def test_a_page_over_its_chunk_limit_keeps_its_first_chunks_and_says_where_it_stopped() -> None:
    whole = chunk_page(page(LONG_PAGE), chunk_size=400, chunk_overlap=40)
    limits = PageLimits(max_chars=len(LONG_PAGE), max_chunks=3)
    bounded = chunk_bounded(page(LONG_PAGE), limits=limits, chunk_size=400, chunk_overlap=40)
    assert bounded.chunks == whole[:3]
    assert bounded.cut == ("chunks cut to the first 3, up to section 'Installation' (PAGE_MAX_CHUNKS)",)


def test_a_blob_is_cut_by_characters_into_chunks_of_its_own() -> None:
    blob = ";" * 5_000  # 5,000 tokens: 20 chunks' worth when measured in tokens
    body = f"<p>Before the blob.</p><p>{blob}</p><p>After the blob.</p>"
    chunks = chunk_page(page(body), chunk_size=1000, chunk_overlap=150, length_function=scaled_tokens)
    pieces = [c.text.split("\n\n", 1)[1] for c in chunks if ";" in c.text]
    assert len(pieces) == 6 and "".join(pieces) == blob  # no overlap, no crumbs, nothing lost
    assert chunks[0].text.endswith("Before the blob.") and chunks[-1].text.endswith("After the blob.")


def test_a_blob_in_code_keeps_its_fence_in_every_piece() -> None:
    chunks = chunk_page(page(code_macro("x=1;" * 1_000, language="js")), chunk_size=1000, chunk_overlap=0)
    assert len(chunks) == 5
    assert all(re.fullmatch(r"VPN Access\n\n```js\n[x=1;]+\n```", c.text) for c in chunks)


def test_a_header_dense_in_tokens_is_shortened_to_leave_room_for_the_text() -> None:
    title = "#" * 250  # 250 characters alone, 1,000 (the whole chunk) inside one
    body = "<p>" + " ".join(f"word{n}." for n in range(2_000)) + "</p>"
    chunks = chunk_page(
        page(body, title=title), chunk_size=1000, chunk_overlap=0, length_function=scaled_tokens
    )
    assert all(scaled_tokens(c.text) <= 1000 for c in chunks)
    # The header takes half the chunk at most, measured inside one, and the text gets the other half:
    # before, the header took all of it and the text one character a chunk.
    assert all(scaled_tokens(c.text.split("\n\n", 1)[0] * 4) <= 4 * 500 for c in chunks)
    texts = [scaled_tokens(c.text.split("\n\n", 1)[1]) for c in chunks]
    assert sum(size < 400 for size in texts) <= 2  # the page's last words, a remainder of a re-cut
    assert len(chunks) <= 45
