"""Text at the web edge: the model's markdown and the wiki's text as HTML in which only our own links live.

The page never parses text from outside as HTML: the server renders it here and the page inserts what it gets
(through one Trusted Types policy, which also drops any link that is not one of the answer's sources). Every
character from outside goes through `html.escape`; the only tags are the ones written below. The only links
are a reply's citations and its Sources list, to its sources' http(s) URLs. A link the model or the wiki
writes (`[label](url)`, an image, `<url>`, a reference definition) is shown as its label and its URL in
code, as on Slack and Teams, so the reader sees where it pointed and nothing loads or opens. Browsers link
nothing in plain text, so bare URLs stay text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from rag.inert_markdown import Slots
from rag.markdown import (
    BOLD,
    BULLET,
    CITATION,
    CITATION_RUN,
    HEADING,
    INLINE_CODE,
    NUMBERED,
    QUOTE,
    RULE,
    STRIKE,
    citation_numbers,
    closes_fence,
    fence_opening,
)
from rag.safe_text import LINK_DEFINITION, clean, source_url
from rag.types import Reply, Source

_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?(\s*:?-{3,}:?\s*\|)+(\s*:?-{3,}:?\s*)?\|?\s*$")
_ITALIC = re.compile(r"(?<![*\w])([*_])(?=[^\s*_])(.+?)(?<=[^\s*_])\1(?![*\w])")
_TITLE_CHARS = 120
MAX_SOURCES = 10


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def source_title(source: Source) -> str:
    title = " ".join(clean(source.title).split()) or source.page_id or "page"
    return title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1].rstrip() + "…"


def render_reply(reply: Reply) -> str:
    """A reply as the chat page shows it: the text, then its numbered Sources."""
    sources = reply.sources[:MAX_SOURCES]
    return render_markdown(reply.text, sources) + sources_html(sources)


def render_draft(text: str) -> str:
    """The answer so far: citations are numbered already but have no sources yet, so they link nothing."""
    return render_markdown(text, ())


def sources_html(sources: Sequence[Source]) -> str:
    if not sources:
        return ""
    items = []
    for source in sources:
        title = escape(source_title(source))
        href = source_url(source.url)
        items.append(f"<li>{_link(href, title) if href else title}</li>")
    return f'<div class="sources"><p class="sources-title">Sources</p><ol>{"".join(items)}</ol></div>'


def _link(href: str, label_html: str, *, css: str = "source", title: str = "") -> str:
    tooltip = f' title="{escape(title)}"' if title else ""
    return (
        f'<a class="{css}" href="{escape(href)}"{tooltip} target="_blank" rel="noopener noreferrer">'
        f"{label_html}</a>"
    )


def render_markdown(markdown: str, sources: Sequence[Source] = ()) -> str:
    """Markdown from outside as HTML: formatting kept, every tag and link in the text made inert text."""
    blocks = _Blocks(sources)
    lines = clean(markdown).replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = fence_opening(line)
        if fence is not None:
            index = blocks.code(lines, index + 1, fence)
            continue
        if _TABLE_ROW.match(line) and index + 1 < len(lines) and _TABLE_RULE.match(lines[index + 1]):
            index = blocks.table(lines, index)
            continue
        blocks.line(line)
        index += 1
    return blocks.done()


class _Blocks:
    """Builds the HTML block by block: paragraphs, lists and quotes stay open until something else starts."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = sources
        self._out: list[str] = []
        self._open: str | None = None  # "p", "ul", "ol" or "blockquote"
        self._lines: list[str] = []
        self._start = ""  # an ordered list's first number

    def done(self) -> str:
        self._close()
        return "".join(self._out)

    def line(self, line: str) -> None:
        if not line.strip():
            self._close()
            return
        if RULE.match(line):
            self._close()
            self._out.append("<hr>")
            return
        heading = HEADING.match(line)
        if heading:
            self._close()
            self._out.append(f'<p class="heading"><strong>{self._inline(heading.group(1))}</strong></p>')
            return
        bullet, numbered = BULLET.match(line), NUMBERED.match(line)
        if bullet:
            self._item("ul", bullet.group(1), bullet.group(2))
        elif numbered:
            self._item("ol", numbered.group(1), numbered.group(3), start=numbered.group(2))
        elif quote_line := QUOTE.match(line):
            self._continue("blockquote", self._inline(quote_line.group(1)))
        elif self._open in ("ul", "ol") and line.startswith((" ", "\t")):
            self._lines[-1] += "<br>" + self._inline(line.strip())  # a list item's continuation line
        else:
            definition = LINK_DEFINITION.match(line)
            if definition:  # "[x]: url" makes every [x] a link in markdown: written without its brackets
                line = f"{definition.group('label')}:{line[definition.end() :]}"
            self._continue("p", self._inline(line.strip()))

    def code(self, lines: list[str], start: int, fence: str) -> int:
        """A fenced block from lines[start]; returns the index after its closing fence (an unclosed fence
        runs to the end, as markdown renders it, rather than swallowing nothing)."""
        self._close()
        end = start
        while end < len(lines) and not closes_fence(lines[end], fence):
            end += 1
        self._out.append(f"<pre><code>{escape(chr(10).join(lines[start:end]))}</code></pre>")
        return end + 1

    def table(self, lines: list[str], start: int) -> int:
        self._close()
        header = self._cells(lines[start], "th")
        rows, end = [], start + 2
        while end < len(lines) and _TABLE_ROW.match(lines[end]):
            rows.append(f"<tr>{self._cells(lines[end], 'td')}</tr>")
            end += 1
        self._out.append(f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        return end

    def _cells(self, row: str, tag: str) -> str:
        cells = row.strip().strip("|").split("|")
        return "".join(f"<{tag}>{self._inline(cell.strip())}</{tag}>" for cell in cells)

    def _item(self, kind: str, indent: str, text: str, *, start: str = "") -> None:
        if self._open != kind:
            self._close()
            self._open = kind
            self._start = start
        nested = ' class="nested"' if len(indent.expandtabs(4)) >= 2 else ""
        self._lines.append(f"<li{nested}>{self._inline(text)}")

    def _continue(self, kind: str, html_line: str) -> None:
        if self._open != kind:
            self._close()
            self._open = kind
        self._lines.append(html_line)

    def _close(self) -> None:
        kind, lines = self._open, self._lines
        if kind in ("ul", "ol"):
            start = f' start="{int(self._start)}"' if kind == "ol" and self._start not in ("", "1") else ""
            self._out.append(f"<{kind}{start}>{''.join(line + '</li>' for line in lines)}</{kind}>")
        elif kind is not None:
            self._out.append(f"<{kind}>{'<br>'.join(lines)}</{kind}>")
        self._open, self._lines = None, []

    def _inline(self, text: str) -> str:
        return inline(text, self._sources)


def inline(text: str, sources: Sequence[Source]) -> str:
    """One line of markdown as HTML: code, emphasis, and `[n]` citations linking the n-th source."""
    slots = Slots()
    text = INLINE_CODE.sub(lambda m: slots.keep(_code(m.group(0).strip("`"))), text)
    text = slots.links(text, code=_code, label=lambda part: inline(part, ()), tidy=_plain_label)
    text = CITATION_RUN.sub(lambda m: slots.keep(_citations(m.group(0), sources)), text)
    text = escape(text)
    text = BOLD.sub(r"<strong>\2</strong>", text)
    text = _ITALIC.sub(r"<em>\2</em>", text)
    text = STRIKE.sub(r"<del>\1</del>", text)
    return slots.restore(text)


def _plain_label(label: str) -> str:
    # Emphasis inside a link's label would pair with our own around it.
    return re.sub(r"(\*\*|__|\*)", "", label).strip()


def _code(text: str) -> str:
    text = text.strip()
    return f"<code>{escape(text)}</code>" if text else ""


def _citations(run: str, sources: Sequence[Source]) -> str:
    out: list[str] = []
    for bracket in CITATION.finditer(run):
        numbers = citation_numbers(bracket.group(1), len(sources))
        if numbers is None:
            out.append(f'<span class="cite">{escape(bracket.group(0))}</span>')  # kept as written
            continue
        for n in numbers:
            source = sources[n - 1]
            href = source_url(source.url)
            label = f"[{n}]"
            out.append(
                _link(href, label, css="cite", title=source_title(source))
                if href
                else f'<span class="cite">{label}</span>'
            )
    return "".join(out)
