"""What a reader would lose if storage format were rendered badly: code, table headers, links, structure."""

from __future__ import annotations

import time

import pytest

from rag.storage_format import Section, cut_storage, parse_storage


def text_of(xhtml: str) -> str:
    return "\n".join(s.text for s in parse_storage(xhtml))


def code_macro(body: str, language: str = "", title: str = "", name: str = "code") -> str:
    params = ""
    if language:
        params += f'<ac:parameter ac:name="language">{language}</ac:parameter>'
    if title:
        params += f'<ac:parameter ac:name="title">{title}</ac:parameter>'
    return (
        f'<ac:structured-macro ac:name="{name}" ac:schema-version="1" ac:macro-id="0f1e">{params}'
        f"<ac:plain-text-body><![CDATA[{body}]]></ac:plain-text-body></ac:structured-macro>"
    )


# --- code ----------------------------------------------------------------------------------------------

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail

if [[ -f /etc/app.conf && $(id -u) -eq 0 ]]; then
    echo "<ok> & done"   # two   spaces   kept
\tprintf '%s\\n' "tab-indented"
fi"""


def test_code_macro_body_survives_verbatim_in_a_fenced_block_with_its_language() -> None:
    text = text_of("<p>Run:</p>" + code_macro(SCRIPT, language="bash"))
    assert f"```bash\n{SCRIPT}\n```" in text


def test_code_title_is_a_line_before_the_fence() -> None:
    text = text_of(code_macro("kubectl get pods", language="shell", title="List pods"))
    assert text == "List pods\n```shell\nkubectl get pods\n```"


def test_cdata_split_around_a_literal_terminator_is_joined_back() -> None:
    # Confluence escapes "]]>" inside code by closing and reopening the CDATA section.
    xhtml = code_macro("if a[b[0]]]]><![CDATA[> c: pass", language="python")
    assert "```python\nif a[b[0]]> c: pass\n```" in text_of(xhtml)


def test_noformat_and_pre_keep_whitespace() -> None:
    text = text_of(code_macro("col1    col2\n  x       y", name="noformat") + "<pre>  a\n    b</pre>")
    assert "```\ncol1    col2\n  x       y\n```" in text
    assert "```\n  a\n    b\n```" in text


def test_code_containing_backtick_fences_gets_a_longer_fence() -> None:
    body = "Example README:\n```\npip install x\n```"
    text = text_of(code_macro(body, language="markdown"))
    assert text == f"````markdown\n{body}\n````"


def test_code_inside_a_list_item_is_not_indented() -> None:
    xhtml = "<ol><li><p>Install:</p>" + code_macro("  make install", language="bash") + "</li></ol>"
    assert text_of(xhtml) == "1. Install:\n```bash\n  make install\n```"


# --- tables --------------------------------------------------------------------------------------------


def test_table_cells_carry_their_column_header() -> None:
    xhtml = (
        "<table><colgroup><col/><col/></colgroup><tbody>"
        "<tr><th><p>Environment</p></th><th><p>Host</p></th><th><p>Port</p></th></tr>"
        "<tr><td><p>Production</p></td><td><code>db-prod-01</code></td><td>5432</td></tr>"
        "<tr><td>Staging</td><td>db-stg-01</td><td>6432</td></tr>"
        "</tbody></table>"
    )
    assert text_of(xhtml).split("\n") == [
        "Environment: Production; Host: `db-prod-01`; Port: 5432",
        "Environment: Staging; Host: db-stg-01; Port: 6432",
    ]


def test_thead_header_and_empty_cells_are_skipped() -> None:
    xhtml = (
        "<table><thead><tr><td>Name</td><td>Value</td></tr></thead>"
        "<tbody><tr><td>timeout</td><td></td></tr><tr><td>retries</td><td>3</td></tr></tbody></table>"
    )
    assert text_of(xhtml) == "Name: timeout\nName: retries; Value: 3"


def test_table_without_header_joins_cells_with_bars() -> None:
    xhtml = "<table><tbody><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></tbody></table>"
    assert text_of(xhtml) == "a | b\nc | d"


def test_colspan_pairs_the_cell_with_every_header_it_spans_once() -> None:
    xhtml = (
        "<table><tbody><tr><th>Day</th><th>Start</th><th>End</th></tr>"
        '<tr><td>Monday</td><td colspan="2">closed all day</td></tr>'
        "<tr><td>Tuesday</td><td>09:00</td><td>17:00</td></tr></tbody></table>"
    )
    assert text_of(xhtml).split("\n") == [
        "Day: Monday; Start / End: closed all day",
        "Day: Tuesday; Start: 09:00; End: 17:00",
    ]


def test_rowspan_repeats_the_cell_in_the_rows_it_covers() -> None:
    xhtml = (
        "<table><tbody><tr><th>Site</th><th>Server</th></tr>"
        '<tr><td rowspan="2">London</td><td>lon-01</td></tr><tr><td>lon-02</td></tr>'
        "</tbody></table>"
    )
    assert text_of(xhtml) == "Site: London; Server: lon-01\nSite: London; Server: lon-02"


def test_ragged_rows_and_absurd_spans_do_not_crash() -> None:
    xhtml = (
        "<table><tbody><tr><th>A</th><th>B</th></tr>"
        "<tr><td>only a</td></tr>"
        "<tr><td>1</td><td>2</td><td>extra</td></tr>"
        '<tr><td colspan="100000" rowspan="x">wide</td></tr>'
        "<tr></tr></tbody></table>"
    )
    lines = text_of(xhtml).split("\n")
    assert lines[:2] == ["A: only a", "A: 1; B: 2; extra"]
    assert lines[2] == "A / B: wide"


def test_row_header_tables_read_as_key_value() -> None:
    xhtml = (
        "<table><tbody><tr><th>Owner</th><td>Payments team</td></tr>"
        '<tr><th>Runbook ready</th><td><ac:emoticon ac:name="tick" /></td></tr></tbody></table>'
    )
    assert text_of(xhtml) == "Owner: Payments team\nRunbook ready: ✓"


def test_multi_line_code_in_a_cell_stays_a_valid_fence() -> None:
    xhtml = (
        "<table><tbody><tr><th>Step</th><th>Command</th></tr><tr><td>Restart</td><td>"
        + code_macro("systemctl restart app\nsystemctl status app", language="bash")
        + "</td></tr></tbody></table>"
    )
    assert text_of(xhtml) == (
        "Step: Restart\nCommand:\n```bash\nsystemctl restart app\nsystemctl status app\n```"
    )


# --- links, macros, inline ------------------------------------------------------------------------------


def test_links_keep_their_text() -> None:
    xhtml = (
        '<p>See <ac:link><ri:page ri:content-title="VPN Access" ri:space-key="IT" /></ac:link>, '
        '<ac:link><ri:page ri:content-title="Network" /><ac:plain-text-link-body><![CDATA[the network '
        "guide]]></ac:plain-text-link-body></ac:link>, "
        '<ac:link><ri:page ri:content-title="X" /><ac:link-body><strong>rich body</strong></ac:link-body>'
        '</ac:link>, <ac:link><ri:attachment ri:filename="runbook.pdf" /></ac:link>, '
        '<a href="https://status.example.com/">the status page</a>, <a href="/wiki/spaces/IT">home</a>, '
        '<a href="mailto:soc@example.com">the SOC</a> and <a href="https://example.com/x">https://example.com/x</a>'
        '. Ask <ac:link><ri:user ri:account-id="5b10ac8d" /></ac:link> or '
        '<ac:link><ri:user ri:username="jdoe" /></ac:link>.</p>'
    )
    assert text_of(xhtml) == (
        "See VPN Access, the network guide, rich body, runbook.pdf, "
        "the status page (https://status.example.com/), home, the SOC and https://example.com/x. "
        "Ask or @jdoe."
    )


def test_markup_only_macros_vanish_and_status_and_jira_keep_their_words() -> None:
    xhtml = (
        '<ac:structured-macro ac:name="toc"><ac:parameter ac:name="maxLevel">3</ac:parameter>'
        "</ac:structured-macro>"
        '<p><ac:structured-macro ac:name="anchor"><ac:parameter ac:name="">top</ac:parameter>'
        "</ac:structured-macro>Intro.</p>"
        '<ac:structured-macro ac:name="children"><ac:parameter ac:name="all">true</ac:parameter>'
        "</ac:structured-macro>"
        '<ac:structured-macro ac:name="contentbylabel"><ac:parameter ac:name="labels">x</ac:parameter>'
        "</ac:structured-macro>"
        '<p>State: <ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">Green'
        '</ac:parameter><ac:parameter ac:name="title">IN PRODUCTION</ac:parameter></ac:structured-macro>'
        ', tracked in <ac:structured-macro ac:name="jira"><ac:parameter ac:name="server">Jira'
        '</ac:parameter><ac:parameter ac:name="key">OPS-1234</ac:parameter></ac:structured-macro>.</p>'
    )
    assert text_of(xhtml) == "Intro.\nState: IN PRODUCTION, tracked in OPS-1234."


@pytest.mark.parametrize(
    ("macro", "word"), [("info", "Info:"), ("note", "Note:"), ("warning", "Warning:"), ("tip", "Tip:")]
)
def test_admonitions_keep_their_body_and_say_what_they_are(macro: str, word: str) -> None:
    xhtml = (
        f'<ac:structured-macro ac:name="{macro}"><ac:rich-text-body><p>Back up first.</p><p>Then go.</p>'
        "</ac:rich-text-body></ac:structured-macro>"
    )
    assert text_of(xhtml) == f"{word} Back up first.\nThen go."


def test_admonition_title_and_expand_title_are_lines() -> None:
    xhtml = (
        '<ac:structured-macro ac:name="warning"><ac:parameter ac:name="title">Settlement hours'
        "</ac:parameter><ac:rich-text-body><p>No downtime 06:00-18:30.</p></ac:rich-text-body>"
        '</ac:structured-macro><ac:structured-macro ac:name="expand"><ac:parameter ac:name="title">'
        "Full procedure</ac:parameter><ac:rich-text-body><ul><li>step</li></ul></ac:rich-text-body>"
        '</ac:structured-macro><ac:structured-macro ac:name="panel"><ac:parameter ac:name="bgColor">'
        "#eee</ac:parameter><ac:rich-text-body><p>Panel body.</p></ac:rich-text-body></ac:structured-macro>"
    )
    assert text_of(xhtml) == (
        "Warning: Settlement hours\nNo downtime 06:00-18:30.\nFull procedure\n- step\nPanel body."
    )


def test_unknown_macros_keep_their_body_and_drop_their_parameters() -> None:
    xhtml = (
        '<ac:structured-macro ac:name="ui-tabs"><ac:parameter ac:name="secret-param">zzz</ac:parameter>'
        "<ac:rich-text-body><p>Tab content.</p></ac:rich-text-body></ac:structured-macro>"
        '<ac:structured-macro ac:name="mystery-widget"><ac:parameter ac:name="id">42</ac:parameter>'
        "</ac:structured-macro>"
    )
    assert text_of(xhtml) == "Tab content."


def test_images_placeholders_comments_and_tasks() -> None:
    xhtml = (
        '<p><ac:placeholder>Type the summary here</ac:placeholder>Diagram: <ac:image ac:alt="network '
        'topology"><ri:attachment ri:filename="net.png" /></ac:image>, '
        '<ac:inline-comment-marker ac:ref="c1">reviewed text</ac:inline-comment-marker>.</p>'
        "<ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status>"
        "<ac:task-body>Order the laptop</ac:task-body></ac:task><ac:task><ac:task-id>2</ac:task-id>"
        "<ac:task-status>incomplete</ac:task-status><ac:task-body><span>Enrol MFA</span></ac:task-body>"
        "</ac:task></ac:task-list>"
    )
    assert text_of(xhtml) == (
        "Diagram: [image: network topology], reviewed text.\n- [x] Order the laptop\n- [ ] Enrol MFA"
    )


# --- structure -----------------------------------------------------------------------------------------


def test_headings_make_sections_with_their_trail() -> None:
    xhtml = (
        "<p>Preamble.</p><h1>Installation</h1><p>Overview.</p><h2>Linux</h2><p>apt.</p>"
        "<h3>Debian</h3><p>deb.</p><h2>macOS</h2><p>brew.</p><h1>FAQ</h1><p>Ask.</p>"
    )
    assert parse_storage(xhtml) == [
        Section((), "Preamble."),
        Section(("Installation",), "Overview."),
        Section(("Installation", "Linux"), "apt."),
        Section(("Installation", "Linux", "Debian"), "deb."),
        Section(("Installation", "macOS"), "brew."),
        Section(("FAQ",), "Ask."),
    ]


def test_empty_parent_heading_lives_on_in_the_trail_but_an_empty_leaf_is_kept() -> None:
    sections = parse_storage("<h1>Guide</h1><h2>Step</h2><p>Do it.</p><h2>Contact: ask #it-help</h2>")
    assert sections == [
        Section(("Guide", "Step"), "Do it."),
        Section(("Guide", "Contact: ask #it-help"), ""),
    ]


def test_lists_are_marked_and_nested_with_indentation() -> None:
    xhtml = (
        "<ul><li>First<ul><li>Nested</li><li><p>Nested two</p></li></ul></li><li>Second</li></ul>"
        "<ol><li>One</li><li>Two<br/>continued</li><ol><li>Two-a</li></ol></ol>"
    )
    assert text_of(xhtml) == (
        "- First\n  - Nested\n  - Nested two\n- Second\n1. One\n2. Two\n   continued\n  1. Two-a"
    )


def test_paragraphs_are_lines_and_whitespace_is_normalised() -> None:
    xhtml = "<p>  one \n  two  </p><p></p><p>&nbsp;</p><p>three<br/><br/>four</p>\n\n\n<p>five</p>"
    assert text_of(xhtml) == "one two\nthree\nfour\nfive"


def test_layouts_are_read_cell_by_cell() -> None:
    xhtml = (
        "<ac:layout><ac:layout-section ac:type='two_equal'><ac:layout-cell><h2>Left</h2><p>L text</p>"
        "</ac:layout-cell><ac:layout-cell><p>R text</p></ac:layout-cell></ac:layout-section></ac:layout>"
    )
    assert parse_storage(xhtml) == [Section(("Left",), "L text\nR text")]


# --- encodings and bad input ---------------------------------------------------------------------------


def test_html_entities_and_french_accents_survive() -> None:
    xhtml = (
        "<h1>D&eacute;pannage</h1><p>L&rsquo;&eacute;quipe r&eacute;seau&nbsp;: appelez le 5140 "
        "&mdash; d&egrave;s 8&#160;h. Ça marche très bien, «&#xA0;mot&#xA0;» &amp; &lt;tag&gt;.</p>"
    )
    assert parse_storage(xhtml) == [
        Section(
            ("Dépannage",),
            "L’équipe réseau : appelez le 5140 — dès 8 h. Ça marche très bien, « mot » & <tag>.",
        )
    ]


@pytest.mark.parametrize(
    "xhtml",
    [
        "<p>unclosed <b>bold<p>next paragraph<br>line",
        "<p>stray & ampersand and &unknown; entity</p>",
        "<p>text</div> mismatched <em>close</p></em>",
        "<foo:bar baz:q='1'>undeclared prefixes</foo:bar><p>after</p>",
        "<<<>>> &&& <![CDATA[ never closed",
        "<p>" * 3000 + "deep",
        "<ul><li>" * 300 + "deep list" + "</li></ul>" * 300,
        '<?xml version="1.0" encoding="UTF-8"?><p>declared</p>',
        "<p>&#0; &#xD800; control \x01 chars</p>",
        "plain text, no markup at all",
    ],
)
def test_malformed_input_never_raises_and_keeps_its_words(xhtml: str) -> None:
    text = text_of(xhtml)
    for word in ("unclosed", "ampersand", "mismatched", "undeclared", "deep", "declared", "control", "plain"):
        if word in xhtml:
            assert word in text


def test_malformed_page_keeps_its_code_verbatim() -> None:
    code = "def restart():\n    run('systemctl  restart app')"
    xhtml = "<p>Restart it<br>then <b>check</p></div>" + code_macro(code, language="python")
    assert f"```python\n{code}\n```" in text_of(xhtml)


def test_empty_bodies_have_no_sections() -> None:
    assert parse_storage("") == []
    assert parse_storage("   \n") == []
    assert parse_storage('<ac:structured-macro ac:name="toc" /><p> </p>') == []


def test_parsing_is_fast_enough_for_a_space_of_pages() -> None:
    page = (
        "<h1>Runbook</h1><p>Intro with a <a href='https://x.example/'>link</a>.</p>"
        + code_macro(SCRIPT, language="bash")
        + "<table><tbody><tr><th>A</th><th>B</th></tr>"
        + "<tr><td>1</td><td>2</td></tr>" * 20
        + "</tbody></table><ul>"
        + "<li>item <strong>bold</strong></li>" * 20
        + "</ul>"
    ) * 2
    started = time.perf_counter()
    for n in range(300):
        parse_storage(page.replace("Runbook", f"Runbook {n}"))
    # Well under a millisecond-scale budget per page in practice; the bound only catches blow-ups.
    assert time.perf_counter() - started < 10


def test_new_editor_panels_and_decisions_are_read_once() -> None:
    xhtml = (
        '<ac:adf-extension><ac:adf-node type="panel"><ac:adf-attribute key="panel-type">warning'
        "</ac:adf-attribute><ac:adf-content><p>Do not reboot the HSM.</p></ac:adf-content></ac:adf-node>"
        '<ac:adf-fallback><div class="panel"><p>Do not reboot the HSM.</p></div></ac:adf-fallback>'
        '</ac:adf-extension><ac:adf-extension><ac:adf-node type="decision-list"><ac:adf-node '
        'type="decision-item"><ac:adf-attribute key="state">DECIDED</ac:adf-attribute><ac:adf-content>'
        "Use Postgres 16</ac:adf-content></ac:adf-node></ac:adf-node><ac:adf-fallback><ul><li>Use Postgres "
        '16</li></ul></ac:adf-fallback></ac:adf-extension><p>Due <time datetime="2026-11-30" />.</p>'
    )
    assert text_of(xhtml) == "Warning: Do not reboot the HSM.\n- Decision: Use Postgres 16\nDue 2026-11-30."


# --- cutting a body at a size ----------------------------------------------------------------------------


def test_a_body_within_the_size_is_not_cut() -> None:
    body = "<p>one</p><p>two</p>"
    assert cut_storage(body, len(body)) is body


def test_a_cut_body_keeps_whole_tags_and_closes_what_it_opened() -> None:
    body = (
        "<h1>Setup</h1><p>one <b>two</b> three</p><table><tbody><tr><td>a</td><td>b</td></tr></tbody></table>"
    )
    assert cut_storage(body, body.index("ree")) == "<h1>Setup</h1><p>one <b>two</b> th</p>"
    # Never half a tag: `<td` at the cut is dropped, the row and table are closed.
    assert (
        cut_storage(body, body.index("<td>b") + 2)
        == "<h1>Setup</h1><p>one <b>two</b> three</p><table><tbody><tr><td>a</td></tr></tbody></table>"
    )
    assert text_of(cut_storage(body, body.index("<td>b") + 2)) == "one two three\na"


def test_a_cut_inside_code_keeps_the_code_that_fits_in_a_closed_block() -> None:
    body = "<p>Run:</p>" + code_macro("make build\nmake test < input\nmake install", language="bash")
    cut = cut_storage(body, body.index("make install"))
    assert text_of(cut) == "Run:\n```bash\nmake build\nmake test < input\n```"


def test_a_body_that_was_not_well_formed_is_cut_but_left_to_the_repair() -> None:
    body = "<p>one<br>two</p><p>three</p><p>four</p>"
    assert cut_storage(body, 30) == "<p>one<br>two</p><p>three</p>"  # no closer for `<br>` invented
    assert text_of(cut_storage(body, 30)) == "one\ntwo\nthree"


def test_cutting_a_hostile_body_takes_linear_time() -> None:
    # Unterminated tags and quotes: a scan that backtracked to the end from each one would take hours.
    for body in ("<a '" * 600_000, "<a " * 600_000, "<![CDATA[" + "x" * 2_000_000):
        started = time.perf_counter()
        cut = cut_storage(body, 1_000_000)
        assert len(cut) <= 1_000_000 + 3
        assert time.perf_counter() - started < 5
