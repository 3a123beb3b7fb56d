"""Markdown from outside (the wiki, the model) as CommonMark in which nothing is a live link, mention or tag.

Teams' messages and Slack's streamed `markdown_text` both render CommonMark (Teams also a subset of HTML, Slack
its own `<@U123>`, `<!here>` and `<url|label>` references), and both link bare URLs and host names on their own.
So every channel that shows markdown renders a line through `line()`: `&`, `<` and `>` become entities (`<` and
`>` in code too: no tag or Slack reference can start anywhere), a link (`[label](url)`, an image, `<url>`,
`<url|label>`, a reference definition) becomes its label and its URL in inline code, and so does a bare URL,
host name or e-mail address. What is left of link syntax is broken (`](` gets a space), so a construct the
patterns miss still renders as text. The only live links are the ones a channel builds from a Reply's sources.

A streamed answer is shown before its lines are whole, and what was shown cannot be taken back: `settled()`
says how much of an unfinished line already renders as the finished line will.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable

from rag.markdown import INLINE_CODE
from rag.safe_text import ANGLE_LINK, LINK_DEFINITION, MARKDOWN_LINK, URL

# Placeholders use private-use characters, which clean() removes from the text.
_SLOT = "\ue000{}\ue001"
_SLOT_RE = re.compile("\ue000(\\d+)\ue001")
_SLOT_PIECES = re.compile("(\ue000\\d+\ue001)")


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_code(text: str) -> str:
    # No tag may start inside code either; an `&` stays as written, as `a=1&b=2` in a URL reads best so (an
    # entity in code can only ever show as a character, never as markup).
    return text.replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code, where nothing is linked; a backtick inside would end it early, so it becomes ˋ."""
    text = escape_code(text.replace("`", "ˋ").strip())
    return f"`{text}`" if text else ""


def line(text: str) -> str:
    """One line of prose (outside code blocks), already clean()ed, as inert markdown."""
    definition = LINK_DEFINITION.match(text)
    if definition:  # "[x]: url" would make every [x] a link: written without its brackets
        text = f"{definition.group('indent')}{definition.group('label')}:{text[definition.end() :]}"
    return inline(text)


def inline(text: str) -> str:
    slots = Slots()
    text = INLINE_CODE.sub(lambda m: slots.keep(code(m.group(0).strip("`"))), text)
    text = slots.links(text, code=code, label=inline)
    text = slots.outside(text, lambda t: URL.sub(lambda m: slots.keep(code(m.group(0))), t))
    text = escape_html(text)
    # A leftover backtick must not pair with one of ours, nor "](" make a link the patterns missed, nor a
    # backslash escape the backtick that opens one of our code spans.
    text = text.replace("`", "ˋ").replace("](", "] (")
    text = re.sub(r"\\+(?=\ue000)", lambda m: m.group(0) * 2, text)
    return slots.restore(text)


class Slots:
    """Pieces of a line already rendered, set aside behind placeholders while the rest of it is converted:
    what every renderer (Slack mrkdwn, inert markdown, the web's HTML) does with code spans and links. The
    placeholders are private-use characters, which clean() removes from outside text: none can be forged."""

    def __init__(self) -> None:
        self._kept: list[str] = []

    def keep(self, rendered: str) -> str:
        self._kept.append(rendered)
        return _SLOT.format(len(self._kept) - 1)

    def restore(self, text: str) -> str:
        return _SLOT_RE.sub(lambda m: self._kept[int(m.group(1))], text)

    def outside(self, text: str, convert: Callable[[str], str]) -> str:
        """`convert` applied to the text between placeholders, never across one."""
        pieces = _SLOT_PIECES.split(text)
        return "".join(piece if i % 2 else convert(piece) for i, piece in enumerate(pieces))

    def links(
        self,
        text: str,
        *,
        code: Callable[[str], str],
        label: Callable[[str], str],
        tidy: Callable[[str], str] = str.strip,
    ) -> str:
        """Every link written in text (`[label](url)`, an image, `<url>`, `<url|label>`) set aside as inert:
        its label rendered by `label` (after `tidy`), then its URL rendered by `code`, where nothing links."""

        def inert(written: str, url: str) -> str:
            url = url.strip("<> ")
            shown_label = tidy(written)
            if not shown_label or shown_label == url:
                return self.keep(code(url))
            # The label may hold code spans already kept (as placeholders): they go back in as rendered.
            pieces = _SLOT_RE.split(shown_label)
            shown = "".join(self._kept[int(p)] if i % 2 else label(p) for i, p in enumerate(pieces)).strip()
            return self.keep(f"{shown} ({code(url)})" if url else shown)

        def destination(written: str) -> str:
            # A destination that held a code span already kept: as written, without its backticks.
            return _SLOT_RE.sub(lambda m: self._kept[int(m.group(1))].strip("`"), written)

        text = MARKDOWN_LINK.sub(lambda m: inert(m.group("label"), destination(m.group("dest"))), text)
        # A URL glued to a code span ends where the span begins: one placeholder inside another would be lost.
        return self.outside(
            text, lambda t: ANGLE_LINK.sub(lambda m: inert(m.group("label") or "", m.group("dest")), t)
        )


def settled(text: str) -> int:
    """How much of an unfinished line (clean()ed, outside code blocks) `line()` already renders as it will
    render the finished line's start: a length before a space or tab, where no code span, link or `<…>` that
    the rest of the line could still close has begun. 0 when nothing is settled yet. A longer text may settle
    less (a construct opened meanwhile): a caller that only appends waits for it to settle further."""
    limit, closed = _constructs(text)
    rendered = line(text)
    tries = 0
    for blank in reversed(list(_BLANK.finditer(text, 0, limit))):
        cut = blank.start()
        if any(spans.inside(cut) for spans in closed):
            continue
        # The patterns above are found on the raw line, line() finds links after code: this is the proof.
        if rendered.startswith(line(text[:cut])):
            return cut
        tries += 1
        if tries == _TRIES:
            break
    return 0


# Cuts that fail the proof tried from the end before giving up until the line is longer.
_TRIES = 8
_BLANK = re.compile(r"[ \t]")


class _Spans:
    """[start, end) spans of one pattern's matches, which never overlap: membership in log time."""

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self.spans = [m.span() for m in pattern.finditer(text)]
        self._starts = [start for start, _ in self.spans]

    def inside(self, index: int) -> bool:
        """Whether index is in a span, its first character excluded (a cut there splits nothing)."""
        at = bisect_right(self._starts, index) - 1
        return at >= 0 and self.spans[at][0] < index < self.spans[at][1]

    def covers(self, index: int) -> bool:
        at = bisect_right(self._starts, index) - 1
        return at >= 0 and index < self.spans[at][1]


def _constructs(text: str) -> tuple[int, tuple[_Spans, ...]]:
    """Where the first construct begins that the rest of the line could still close (the end when none), and
    the spans of those already closed (code spans, links, `<…>`)."""
    code, links = _Spans(INLINE_CODE, text), _Spans(MARKDOWN_LINK, text)
    link_ends = dict(links.spans)
    # Code spans are found first, so everything after a run nothing closed yet is unknown: the run may yet
    # open a span. So is a span closed by a run at the very end: that run may grow ("`a`", then "`a``").
    limit = len(text)
    for run in re.finditer(r"`+", text):
        if not code.covers(run.start()) or (code.spans and code.spans[-1] == (run.start(), len(text))):
            limit = run.start()
            break
    for opener in re.finditer(r"[\[<]", text[:limit]):
        start = opener.start()
        if start >= limit or code.covers(start):
            continue
        if opener.group(0) == "<":
            if text.find(">", start, limit) < 0:
                limit = start
            continue
        # "[": a label closed before what is unknown, by a "]" outside code; "[label](" a link already whole.
        close = text.find("]", start + 1, limit)
        while close >= 0 and code.covers(close):
            close = text.find("]", close + 1, limit)
        whole = link_ends.get(start, limit + 1) <= limit
        if close < 0 or close == len(text) - 1 or (text[close + 1] == "(" and not whole):
            limit = start
    return limit, (code, links, _Spans(ANGLE_LINK, text))
