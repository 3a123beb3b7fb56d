"""Confluence storage format (XHTML with `ac:`/`ri:` elements) to plain text that keeps its meaning.

A regex tag stripper loses what matters most on a wiki: code macro bodies live in CDATA, table cells
mean little without their column header, and link text hides in macro children. This module parses the
storage format with lxml and renders each construct the way a reader would retell it.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bs4 import BeautifulSoup
from lxml import etree

from rag.markdown import closes_fence, fence_opening

__all__ = ["Section", "cut_storage", "parse_storage"]


@dataclass(frozen=True, slots=True)
class Section:
    """Text under one heading trail; text before the first heading has the empty trail."""

    headings: tuple[str, ...]
    text: str


def parse_storage(xhtml: str) -> list[Section]:
    """Sections of a storage-format body, in page order. Never raises on malformed input."""
    if not xhtml or not xhtml.strip():
        return []
    root, exact = _parse(xhtml)
    if root is None:
        return _plain_sections(xhtml)
    try:
        sections = _sections(_Renderer().flow(root))
    except (RecursionError, ValueError):
        return _plain_sections(xhtml)
    if not exact:
        # lxml's recovery can silently drop the rest of a document after an error it cannot mend.
        plain = _plain_sections(xhtml)
        if 2 * _size(sections) < _size(plain):
            return plain
    return sections


def _size(sections: list[Section]) -> int:
    return sum(len(s.text) for s in sections)


# Markup items in document order: CDATA and comments (whole, or to the end of a cut body), declarations and
# processing instructions, then tags. Attribute values cannot hold `<`, and no item spans one it does not
# start with: every failed attempt stops at the next `<`, so a scan stays linear on any input.
_MARKUP = re.compile(
    r"<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)|<[?!][^<>]*>"
    r"|<(/?)([A-Za-z_][\w:.-]*)(?:[^<>\"']|\"[^<\"]*\"|'[^<']*')*?(/?)>",
    re.S,
)


def cut_storage(xhtml: str, max_chars: int) -> str:
    """The start of a body, about `max_chars` long, cut between tags; itself when it is no longer.

    A body cut where it was well-formed gets its open elements (and an open CDATA section) closed again,
    so the strict parse reads it whole: html.parser's repair of a cut megabyte would cost several times
    the memory. A body that was not well-formed up to the cut is left to parse_storage's repair.
    """
    if len(xhtml) <= max_chars:
        return xhtml
    head = xhtml[:max_chars]
    opened: list[str] = []
    balanced = True
    end = 0
    closing = ""
    for match in _MARKUP.finditer(head):
        item = match.group(0)
        if item.startswith("<![CDATA[") and not item.endswith("]]>"):
            closing = "]]>"  # the cut fell inside code: keep what fits of it
        elif item.startswith("<!--") and not item.endswith("-->"):
            break  # the cut fell inside a comment: it ends before it
        elif match.group(2):
            name = match.group(2)
            if match.group(1):
                if opened and opened[-1] == name:
                    opened.pop()
                else:
                    balanced = False
            elif not match.group(3):
                opened.append(name)
        end = match.end()
    if not closing:
        # After the last whole item: text, then perhaps a tag the cut split in two.
        split_tag = head.find("<", end)
        end = split_tag if split_tag >= 0 else len(head)
    body = head[:end] + closing
    if balanced:
        body += "".join(f"</{name}>" for name in reversed(opened))
    return body


# --- parsing -------------------------------------------------------------------------------------------

# Confluence never declares its prefixes; we declare every prefix the body uses under this base so that
# lxml accepts it and `_name` can give the element back its `ac:`-style name.
_NS = "urn:x-wikibot:"
_XML_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})
_CDATA_SPLIT = re.compile(r"(<!\[CDATA\[.*?(?:\]\]>|\Z))", re.S)
_AMPERSAND = re.compile(r"&(?:(#[0-9]+|#[xX][0-9a-fA-F]+)|([A-Za-z][A-Za-z0-9]*));|&")
_TAG_PREFIX = re.compile(r"</?([A-Za-z_][\w.-]*):[A-Za-z_]")
_ATTR_PREFIX = re.compile(r"\s([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*\s*=")
_PROLOG = re.compile(r"^\s*(?:<\?xml[^>]*\?>)?\s*(?:<!DOCTYPE[^>]*>)?", re.I)


def _parse(xhtml: str) -> tuple[etree._Element | None, bool]:
    """Strict parse first; repair HTML-style sloppiness with html.parser; lxml's recovery last.

    The flag says whether the tree is faithful (strict parse of the body or of its repaired form).
    """
    body = _PROLOG.sub("", xhtml, count=1)
    prefixes = {p for p in _TAG_PREFIX.findall(body) + _ATTR_PREFIX.findall(body)}
    prefixes -= {"xml", "xmlns"}
    try:
        return _xml(body, prefixes, recover=False), True
    except (etree.XMLSyntaxError, ValueError):
        pass
    try:
        repaired = BeautifulSoup(body, "html.parser").decode(formatter="minimal")
        return _xml(repaired, prefixes, recover=False), True
    except (etree.XMLSyntaxError, ValueError, RecursionError, AssertionError):
        pass
    try:
        return _xml(body, prefixes, recover=True), False
    except (etree.XMLSyntaxError, ValueError):
        return None, False


def _xml(body: str, prefixes: Iterable[str], *, recover: bool) -> etree._Element | None:
    decls = "".join(f' xmlns:{p}="{_NS}{p}"' for p in sorted(prefixes))
    document = f"<wikibot-root{decls}>{_escape_entities(body)}</wikibot-root>"
    parser = etree.XMLParser(
        recover=recover,
        resolve_entities=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        strip_cdata=True,
    )
    return etree.fromstring(document, parser)


def _escape_entities(body: str) -> str:
    """HTML named entities become numeric references (XML knows five); a bare `&` becomes `&amp;`."""
    parts = _CDATA_SPLIT.split(body)
    for i in range(0, len(parts), 2):  # odd indices are CDATA sections: verbatim by definition
        parts[i] = _AMPERSAND.sub(_entity, parts[i])
    return "".join(parts)


def _entity(match: re.Match[str]) -> str:
    numeric, name = match.group(1), match.group(2)
    if numeric:
        code = int(numeric[2:], 16) if numeric[1] in "xX" else int(numeric[1:])
        return f"&{numeric};" if _xml_char(code) else ""
    if name is None:
        return "&amp;"
    if name in _XML_PREDEFINED:
        return f"&{name};"
    value = html.entities.html5.get(name + ";")
    if value is None:
        return f"&amp;{name};"
    return "".join(f"&#{ord(c)};" for c in value)


def _xml_char(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or (0x10000 <= code <= 0x10FFFF)
    )


# --- rendering -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


_Block = _Heading | _Text

_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_FLOW_ELEMENTS = frozenset(
    {
        "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "figure",
        "figcaption", "center", "address", "details", "summary", "li", "td", "th", "tr", "tbody",
        "thead", "tfoot", "ac:layout", "ac:layout-section", "ac:layout-cell", "ac:rich-text-body",
        "ac:adf-content", "ac:task-body", "caption",
    }
)  # fmt: skip
_BLOCK_ELEMENTS = _FLOW_ELEMENTS | set(_HEADINGS) | {
    "ul", "ol", "dl", "table", "pre", "blockquote", "hr", "ac:task-list", "ac:adf-extension",
    "ac:adf-node",
}  # fmt: skip
# Inline elements that never hold blocks, whatever a broken page nests inside them.
_INLINE_LEAVES = frozenset(
    {"a", "ac:link", "code", "time", "ac:image", "ac:emoticon", "br", "ac:placeholder", "ac:parameter"}
)
_CODE_MACROS = frozenset({"code", "noformat", "code-block", "codeblock"})
_ADMONITIONS = {"info": "Info:", "note": "Note:", "warning": "Warning:", "tip": "Tip:"}
# Panels of the newer editor (adf panel-type) mapped to the same words.
_ADF_PANELS = {
    "info": "Info:", "note": "Note:", "warning": "Warning:", "error": "Warning:", "success": "Tip:",
    "tip": "Tip:",
}  # fmt: skip
_TITLED_CONTAINERS = frozenset({"panel", "expand", "ui-expand", "deck", "card", "ui-tab"})
# Macros that render navigation, listings or other pages' content: nothing of this page's own meaning.
_DROPPED_MACROS = frozenset(
    {
        "toc", "children", "anchor", "pagetree", "pagetreesearch", "recently-updated", "contentbylabel",
        "content-by-label", "attachments", "livesearch", "blog-posts", "include", "excerpt-include",
        "profile", "profile-picture", "gallery", "viewfile", "view-file", "viewpdf", "viewdoc", "viewppt",
        "viewxls", "multimedia", "widget", "create-from-template", "content-report-table", "task-report",
        "tasks-report-macro", "page-index", "navmap", "listlabels", "popular-labels", "related-labels",
        "search", "space-details", "spaces-list", "index", "recently-updated-dashboard", "network",
        "favpages", "contributors", "contributors-summary", "page-activity", "change-history",
        "recently-used-labels", "roadmap", "im", "iframe", "gadget", "loremipsum", "toc-zone-anchor",
        "create-space-button", "global-reports", "rss", "jiraissues", "jira-chart", "userlister",
        "details-summary", "detailssummary", "space-attachments", "welcome-message",
    }
)  # fmt: skip
_EMOTICONS = {
    "tick": "✓", "cross": "✗", "warning": "⚠", "information": "ℹ", "plus": "+", "minus": "-",
    "question": "?", "yellow-star": "★", "red-star": "★", "green-star": "★", "blue-star": "★",
    "light-on": "💡", "light-off": "💡", "smile": "🙂", "sad": "🙁", "thumbs-up": "👍",
    "thumbs-down": "👎", "cheeky": "😛", "laugh": "😀", "wink": "😉",
}  # fmt: skip
_WS = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_MAX_SPAN = 50  # colspan/rowspan are untrusted: cap them so one cell cannot allocate a huge grid


def _name(el: etree._Element) -> str:
    """`ac:structured-macro`, `p`, ...; empty for comments and processing instructions."""
    tag = el.tag
    return _tag_name(tag) if isinstance(tag, str) else ""


# A pure function of a handful of distinct tags, called for every element: memoised for speed.
@functools.lru_cache(maxsize=1024)
def _tag_name(tag: str) -> str:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        prefix = namespace[len(_NS) :] if namespace.startswith(_NS) else ""
        return f"{prefix}:{local.lower()}" if prefix else local.lower()
    return tag.lower()


def _attr(el: etree._Element, name: str) -> str:
    prefix, _, local = name.rpartition(":")
    value = el.get(f"{{{_NS}{prefix}}}{local}" if prefix else local)
    if value is None and prefix:  # after html.parser repair, lxml may see a plain attribute
        value = el.get(name)
    return value or ""


def _inline_text(raw: str) -> str:
    return _WS.sub(" ", _INVISIBLE.sub("", raw))


def _clean_block(raw: str) -> str:
    """Trim every line of inline text; drop the empty ones (a `<br/><br/>` is not a paragraph)."""
    lines = (_WS.sub(" ", line).strip() for line in raw.split("\n"))
    return "\n".join(line for line in lines if line)


def _join_lines(texts: Iterable[str]) -> str:
    return "\n".join(t for t in texts if t)


def _indent(text: str, first: str, rest: str) -> str:
    """Prefix the first line with `first` and the others with `rest`, leaving code fences untouched."""
    out: list[str] = []
    fence = ""
    for i, line in enumerate(text.split("\n")):
        if fence:
            out.append(line)
            if closes_fence(line, fence):
                fence = ""
            continue
        opening = fence_opening(line)
        if opening:
            fence = opening
            if i == 0 and first.strip():
                out.append(first.rstrip())
            out.append(line)
            continue
        out.append((first if i == 0 else rest) + line)
    return "\n".join(out)


class _Renderer:
    """Turns a parsed storage tree into blocks; stateless apart from the tree it walks."""

    def flow(self, el: etree._Element) -> list[_Block]:
        """Children of a container, as blocks: runs of inline content become one paragraph each."""
        blocks: list[_Block] = []
        inline: list[str] = []

        def flush() -> None:
            text = _clean_block("".join(inline))
            inline.clear()
            if text:
                blocks.append(_Text(text))

        def walk(parent: etree._Element) -> None:
            if parent.text:
                inline.append(_inline_text(parent.text))
            for child in parent:
                if not self._is_block(child):
                    inline.append(self.inline(child))
                elif _name(child) in _BLOCK_ELEMENTS or _name(child) in ("ac:structured-macro", "ac:macro"):
                    flush()
                    blocks.extend(self.block(child))
                else:  # an inline wrapper holding blocks: its words stay in the paragraph around it
                    walk(child)
                if child.tail:
                    inline.append(_inline_text(child.tail))

        walk(el)
        flush()
        return blocks

    def flow_text(self, el: etree._Element) -> str:
        """A container rendered as text, headings included as lines (inside lists and tables)."""
        return _join_lines(b.text for b in self.flow(el))

    def _is_block(self, el: etree._Element) -> bool:
        name = _name(el)
        if name in _BLOCK_ELEMENTS:
            return True
        if name in ("ac:structured-macro", "ac:macro"):
            return _is_block_macro(el)
        if name in _INLINE_LEAVES or name.startswith("ri:"):
            return False
        # html.parser's repair of an unclosed <b> or <span> swallows what follows, code macros included:
        # such a wrapper is read as a container so that the code inside keeps its lines.
        return any(
            (n := _name(d)) in _BLOCK_ELEMENTS
            or (n in ("ac:structured-macro", "ac:macro") and _is_block_macro(d))
            for d in el.iterdescendants()
        )

    # -- blocks

    def block(self, el: etree._Element) -> list[_Block]:
        name = _name(el)
        if name in _HEADINGS:
            text = _clean_block(self.inline_children(el)).replace("\n", " ")
            return [_Heading(_HEADINGS[name], text)] if text else []
        if name in ("ul", "ol"):
            return self._one(self.render_list(el))
        if name == "table":
            return self._one(self.table(el))
        if name == "pre":
            return self._one(_fence("".join(el.itertext()), ""))
        if name == "blockquote":
            return self._one(_indent(self.flow_text(el), "> ", "> "))
        if name == "dl":
            return self._one(self.definitions(el))
        if name == "hr":
            return []
        if name == "ac:task-list":
            return self._one(self.tasks(el))
        if name in ("ac:structured-macro", "ac:macro"):
            return self.macro(el)
        if name == "ac:adf-extension":
            return self.adf_extension(el)
        if name == "ac:adf-node":
            return self.adf_node(el)
        return self.flow(el)

    @staticmethod
    def _one(text: str) -> list[_Block]:
        return [_Text(text)] if text else []

    def render_list(self, el: etree._Element) -> str:
        ordered = _name(el) == "ol"
        try:
            number = int(_attr(el, "start") or 1)
        except ValueError:
            number = 1
        items: list[str] = []
        for child in el:
            name = _name(child)
            if name == "li":
                marker = f"{number}." if ordered else "-"
                number += 1
                content = self.flow_text(child)
                if content:
                    items.append(_indent(content, marker + " ", " " * (len(marker) + 1)))
            elif name in ("ul", "ol"):  # editors emit lists nested straight inside lists
                nested = self.render_list(child)
                if nested:
                    items.append(_indent(nested, "  ", "  "))
            elif name:
                content = self.flow_text(child)
                if content:
                    items.append(content)
            if child.tail and child.tail.strip():
                items.append(_clean_block(_inline_text(child.tail)))
        return _join_lines(items)

    def tasks(self, el: etree._Element) -> str:
        items: list[str] = []
        for child in el:
            name = _name(child)
            if name == "ac:task":
                done = False
                parts: list[str] = []
                for part in child:
                    part_name = _name(part)
                    if part_name == "ac:task-status":
                        done = "".join(part.itertext()).strip().lower() == "complete"
                    elif part_name == "ac:task-body":
                        parts.append(self.flow_text(part))
                    elif part_name == "ac:task-list":
                        parts.append(_indent(self.tasks(part), "  ", "  "))
                marker = "- [x]" if done else "- [ ]"
                body = _join_lines(parts)
                if body:
                    items.append(_indent(body, marker + " ", "  "))
            elif name == "ac:task-list":
                nested = self.tasks(child)
                if nested:
                    items.append(_indent(nested, "  ", "  "))
        return _join_lines(items)

    def definitions(self, el: etree._Element) -> str:
        lines: list[str] = []
        for child in el:
            text = self.flow_text(child)
            if not text:
                continue
            lines.append(_indent(text, "  ", "  ") if _name(child) == "dd" else text)
        return _join_lines(lines)

    def table(self, el: etree._Element) -> str:
        rows = _table_rows(el)
        grid, header_flags = self._grid(rows)
        if not grid:
            return ""
        caption = ""
        for child in el:
            if _name(child) == "caption":
                caption = self.flow_text(child).replace("\n", " ")
        # Leading rows made only of <th> (or a <thead>) are the column headers.
        n_header = 0
        while n_header < len(grid) and header_flags[n_header]:
            n_header += 1
        if n_header == len(grid):  # a table of only <th>: treat it as data, nothing to pair with
            n_header = 0
        width = max(len(row) for row in grid)
        headers = [_column_header(grid[:n_header], col) for col in range(width)]
        lines = [caption] if caption else []
        for row in grid[n_header:]:
            line = self._row(row, headers)
            if line:
                lines.append(line)
        return _join_lines(lines)

    def _grid(self, rows: list[tuple[etree._Element, bool]]) -> tuple[list[list[_Cell]], list[bool]]:
        """Rows of cells laid out on a grid: colspan repeats a cell, rowspan carries it down."""
        grid: list[list[_Cell]] = []
        flags: list[bool] = []
        carried: dict[int, tuple[_Cell, int]] = {}  # column -> (cell, rows it still covers)
        for tr, in_thead in rows:
            row: list[_Cell] = []
            queue = [c for c in tr if _name(c) in ("td", "th")]
            all_th = bool(queue) and all(_name(c) == "th" for c in queue)
            queue.reverse()
            while queue or any(c >= len(row) for c in carried):
                col = len(row)
                if col in carried:
                    cell, left = carried.pop(col)
                    row.append(cell)
                    if left > 1:
                        carried[col] = (cell, left - 1)
                    continue
                if not queue:  # a ragged row short of a cell carried further right
                    row.append(_Cell("", False, col))
                    continue
                td = queue.pop()
                text = self.flow_text(td)
                rowspan = _span(_attr(td, "rowspan"))
                for _ in range(_span(_attr(td, "colspan"))):
                    cell = _Cell(text, _name(td) == "th", col)
                    if rowspan > 1:
                        carried[len(row)] = (cell, rowspan - 1)
                    row.append(cell)
            if row:
                grid.append(row)
                flags.append(in_thead or all_th)
        return grid, flags

    @staticmethod
    def _row(row: list[_Cell], headers: list[str]) -> str:
        cells: list[tuple[int, _Cell]] = []
        seen: set[int] = set()
        for col, cell in enumerate(row):
            if cell.origin in seen:
                continue  # a colspan repeats one cell on the grid: say it once
            seen.add(cell.origin)
            if cell.text:
                cells.append((col, cell))
        if not cells:
            return ""
        values = [cell.text for _, cell in cells]
        if all(cell.is_header for _, cell in cells):
            return _join_row(values, " | ")  # a sub-heading row inside the table
        if any(headers):
            parts: list[str] = []
            for col, cell in cells:
                spanned = (
                    headers[c]
                    for c in range(col, min(len(row), len(headers)))
                    if row[c].origin == cell.origin
                )
                label = " / ".join(_dedupe(h for h in spanned if h))
                parts.append(_pair(label, cell.text) if label else cell.text)
            return _join_row(parts, "; ")
        first_col, first = cells[0]
        if first.is_header and first_col == 0 and len(cells) > 1:
            return _pair(first.text, _join_row(values[1:], " | "))  # key/value table: row headers
        return _join_row(values, " | ")

    # -- macros

    def macro(self, el: etree._Element) -> list[_Block]:
        name = _attr(el, "ac:name").lower()
        params = _params(el)
        if name in _CODE_MACROS:
            body = _plain_body(el)
            if body is None:
                rich = _child(el, "ac:rich-text-body")
                body = self.flow_text(rich) if rich is not None else ""
            fence = _fence(body, _language(params.get("language", "")))
            title = _clean_block(params.get("title", "")).replace("\n", " ")
            return self._one(_join_lines([title, fence]))
        if name in _DROPPED_MACROS:
            return []
        if name in ("status", "jira"):
            return self._one(self._inline_macro(name, params))
        rich = _child(el, "ac:rich-text-body")
        blocks = self.flow(rich) if rich is not None else []
        plain = _plain_body(el)
        if plain is not None and plain.strip():
            blocks.append(_Text(_fence(plain, "")))
        if name in _ADMONITIONS:
            title = _clean_block(params.get("title", "")).replace("\n", " ")
            return _prefixed(blocks, _ADMONITIONS[name], title)
        if name in _TITLED_CONTAINERS:
            title = _clean_block(params.get("title", "")).replace("\n", " ")
            return [_Text(title), *blocks] if title else blocks
        return blocks

    def _inline_macro(self, name: str, params: dict[str, str]) -> str:
        if name == "status":
            return _inline_text(params.get("title", "")).strip()
        if name == "jira":
            return _inline_text(params.get("key", "")).strip()
        return ""

    def adf_extension(self, el: etree._Element) -> list[_Block]:
        node = _child(el, "ac:adf-node")
        if node is not None:
            return self.adf_node(node)
        fallback = _child(el, "ac:adf-fallback")
        return self.flow(fallback) if fallback is not None else []

    def adf_node(self, el: etree._Element) -> list[_Block]:
        node_type = _attr(el, "type").lower()
        attributes = {
            _attr(c, "key").lower(): "".join(c.itertext()).strip()
            for c in el
            if _name(c) == "ac:adf-attribute"
        }
        blocks: list[_Block] = []
        for child in el:
            name = _name(child)
            if name == "ac:adf-content":
                blocks.extend(self.flow(child))
            elif name == "ac:adf-node":
                blocks.extend(self.adf_node(child))
        if node_type == "panel":
            word = _ADF_PANELS.get(attributes.get("panel-type", "info"), "")
            return _prefixed(blocks, word, "") if word else blocks
        if node_type == "decision-item":
            text = _join_lines(b.text for b in blocks)
            return self._one(_indent(text, "- Decision: ", "  ")) if text else []
        return blocks

    # -- inline

    def inline_children(self, el: etree._Element) -> str:
        parts = [_inline_text(el.text)] if el.text else []
        for child in el:
            parts.append(self.inline(child))
            if child.tail:
                parts.append(_inline_text(child.tail))
        return "".join(parts)

    def inline(self, el: etree._Element) -> str:
        name = _name(el)
        if not name:
            return ""
        if name == "br":
            return "\n"
        if name == "a":
            return self._anchor(el)
        if name == "ac:link":
            return self._link(el)
        if name == "ac:image":
            return self._image(el)
        if name == "ac:emoticon":
            return _emoticon(el)
        if name in (
            "ac:placeholder",
            "ac:parameter",
            "ac:adf-attribute",
            "ac:adf-fallback",
            "script",
            "style",
        ):
            return ""
        if name == "time":
            return _attr(el, "datetime") or self.inline_children(el)
        if name == "code":
            text = _inline_text("".join(el.itertext())).strip()
            return f"`{text}`" if text else ""
        if name in ("ac:structured-macro", "ac:macro"):
            macro = _attr(el, "ac:name").lower()
            if macro in ("status", "jira"):
                return self._inline_macro(macro, _params(el))
            if macro in _DROPPED_MACROS:
                return ""
            return " ".join(b.text for b in self.macro(el))
        if name.startswith("ri:"):
            return _resource(el)
        if self._is_block(el):  # a block inside inline content: keep its text, on its own lines
            return "\n" + _join_lines(b.text for b in self.block(el)) + "\n"
        return self.inline_children(el)

    def _anchor(self, el: etree._Element) -> str:
        text = _clean_block(self.inline_children(el)).replace("\n", " ")
        href = _attr(el, "href").strip()
        if href.lower().startswith(("http://", "https://")):
            if not text or text == href:
                return href
            return f"{text} ({href})"
        return text

    def _link(self, el: etree._Element) -> str:
        body = ""
        resource = ""
        for child in el:
            name = _name(child)
            if name == "ac:plain-text-link-body":
                body = "".join(child.itertext())
            elif name == "ac:link-body":
                body = self.inline_children(child)
            elif name.startswith("ri:") and not resource:
                resource = _resource(child)
        body = _clean_block(_inline_text(body)).replace("\n", " ")
        if body:
            return body
        return resource or _attr(el, "ac:anchor")

    def _image(self, el: etree._Element) -> str:
        label = _attr(el, "ac:alt") or _attr(el, "ac:title")
        if not label:
            for child in el:
                if _name(child) == "ri:attachment":
                    label = _attr(child, "ri:filename")
        label = _inline_text(label).strip()
        return f"[image: {label}]" if label else ""


@dataclass(frozen=True, slots=True)
class _Cell:
    text: str
    is_header: bool
    origin: int  # the grid column where the cell starts: one cell spread by colspan shares it


def _table_rows(table: etree._Element) -> list[tuple[etree._Element, bool]]:
    """The table's own rows (not those of nested tables), each flagged when it sits in <thead>."""
    rows: list[tuple[etree._Element, bool]] = []
    for child in table:
        name = _name(child)
        if name == "tr":
            rows.append((child, False))
        elif name in ("thead", "tbody", "tfoot"):
            rows.extend((tr, name == "thead") for tr in child if _name(tr) == "tr")
    return rows


def _span(raw: str) -> int:
    try:
        return max(1, min(int(raw.strip() or 1), _MAX_SPAN))
    except ValueError:
        return 1


def _column_header(header_rows: list[list[_Cell]], col: int) -> str:
    labels = [row[col].text.replace("\n", " ") for row in header_rows if col < len(row)]
    return " / ".join(_dedupe(label for label in labels if label))


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _pair(label: str, value: str) -> str:
    if "\n" in value:
        return f"{label}:\n{value}"
    return f"{label}: {value}"


def _join_row(parts: list[str], sep: str) -> str:
    """One row, one line; a multi-line cell (code, lists) goes on lines of its own."""
    out = ""
    previous_multiline = False
    for part in parts:
        multiline = "\n" in part
        if out:
            out += "\n" if multiline or previous_multiline else sep
        out += part
        previous_multiline = multiline
    return out


def _is_block_macro(el: etree._Element) -> bool:
    macro = _attr(el, "ac:name").lower()
    if macro in _CODE_MACROS or macro in _ADMONITIONS or macro in _TITLED_CONTAINERS:
        return True
    return any(_name(c) in ("ac:rich-text-body", "ac:plain-text-body") for c in el)


def _child(el: etree._Element, name: str) -> etree._Element | None:
    for child in el:
        if _name(child) == name:
            return child
    return None


def _params(el: etree._Element) -> dict[str, str]:
    params: dict[str, str] = {}
    for child in el:
        if _name(child) == "ac:parameter":
            params[_attr(child, "ac:name").lower()] = "".join(child.itertext())
    return params


def _plain_body(el: etree._Element) -> str | None:
    body = _child(el, "ac:plain-text-body")
    return None if body is None else "".join(body.itertext())


def _language(raw: str) -> str:
    words = raw.strip().split()
    return re.sub(r"[^\w+#.-]", "", words[0]).lower() if words else ""


def _fence(code: str, language: str) -> str:
    """A fenced block that keeps the code verbatim; the fence outgrows any backtick run inside."""
    code = code.strip("\r\n")
    if not code.strip():
        return ""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{code}\n{fence}"


def _prefixed(blocks: list[_Block], word: str, title: str) -> list[_Block]:
    """`Warning: title` before the body, or `Warning: ` in front of its first paragraph."""
    out = list(blocks)
    first = next((i for i, b in enumerate(out) if isinstance(b, _Text)), None)
    if title or first is None or fence_opening(out[first].text.split("\n", 1)[0]):
        return [_Text(f"{word} {title}".strip()), *out]
    out[first] = _Text(f"{word} {out[first].text}")
    return out


def _resource(el: etree._Element) -> str:
    name = _name(el)
    if name in ("ri:page", "ri:blog-post"):
        return _attr(el, "ri:content-title")
    if name == "ri:attachment":
        return _attr(el, "ri:filename")
    if name == "ri:user":
        username = _attr(el, "ri:username")
        return f"@{username}" if username else ""
    if name == "ri:space":
        return _attr(el, "ri:space-key")
    if name == "ri:url":
        return _attr(el, "ri:value")
    return ""


def _emoticon(el: etree._Element) -> str:
    fallback = _attr(el, "ac:emoji-fallback")
    if fallback and not fallback.startswith(":"):
        return fallback
    return _EMOTICONS.get(_attr(el, "ac:name").lower(), "")


# --- sections ------------------------------------------------------------------------------------------


def _sections(blocks: list[_Block]) -> list[Section]:
    raw: list[Section] = []
    trail: list[tuple[int, str]] = []
    lines: list[str] = []

    def close() -> None:
        raw.append(Section(tuple(t for _, t in trail), "\n".join(lines)))
        lines.clear()

    for block in blocks:
        if isinstance(block, _Heading):
            close()
            while trail and trail[-1][0] >= block.level:
                trail.pop()
            trail.append((block.level, block.text))
        else:
            lines.append(block.text)
    close()
    # An empty section is kept only when it is a leaf heading: a parent lives on in its children's trail.
    kept: list[Section] = []
    for i, section in enumerate(raw):
        if section.text:
            kept.append(section)
            continue
        if not section.headings:
            continue
        following = raw[i + 1].headings if i + 1 < len(raw) else ()
        if following[: len(section.headings)] != section.headings:
            kept.append(section)
    return kept


_CDATA_BODY = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)", re.S)
_TAG = re.compile(r"<[^>]*>")


def _plain_sections(xhtml: str) -> list[Section]:
    """Last resort when nothing parses: tags dropped, CDATA and entities turned back into text."""
    parts = _CDATA_SPLIT.split(xhtml)
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("\n" + _CDATA_BODY.sub(r"\1", part) + "\n")
        else:
            out.append(html.unescape(_TAG.sub("\n", part)))
    text = "\n".join(line.strip() for line in "".join(out).split("\n") if line.strip())
    return [Section((), text)] if text else []
