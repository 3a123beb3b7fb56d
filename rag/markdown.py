"""The markdown rules every part must agree on: where code is, and what a citation is.

Chunking keeps code blocks whole, answering renumbers citations outside code, and each channel renders
both: if they disagreed, a `[1]` inside code could become a link, or a split could cut a block in two.
Fences follow CommonMark: three or more backticks or tildes; a backtick fence's info string holds no
backtick; the closing fence uses the same character, at least as long. Any indentation is allowed, as a
fence nested in a list item is indented (and models nest them so).
"""

from __future__ import annotations

import re

_FENCE_OPEN = re.compile(r"[ \t]*(`{3,}|~{3,})")
# The line-level blocks every channel renders: "# Heading", "- item" (indent, text), "1. item" (indent, number,
# text), "> quote" and a "---" rule.
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
NUMBERED = re.compile(r"^(\s*)(\d{1,3})[.)]\s+(.*)$")
QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
# Emphasis within a line: "**bold**" or "__bold__" (the text is group 2), "~~struck~~" (group 1).
BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")

# A citation names passages 1..999: one "[2]", a list "[1, 3]" or a range "[1-3]" (any dash).
_NUMBER = r"[1-9]\d{0,2}"
_ITEM = rf"{_NUMBER}(?:\s*[-–—]\s*{_NUMBER})?"
# Not a markdown link "[1](url)".
_BRACKET_SOURCE = rf"\[\s*({_ITEM}(?:\s*,\s*{_ITEM})*)\s*\](?!\()"
CITATION = re.compile(_BRACKET_SOURCE)
# Adjacent brackets are one run, rendered together ("[1][1]" → "[1]"). A run glued to an identifier or to a
# closing bracket or parenthesis is indexing (`args[1]`, `x[0][1]`, `f()[1]`); "word.[1]" is a citation.
CITATION_RUN = re.compile(rf"(?<![\w\])]){_BRACKET_SOURCE}(?:[ \t]*{_BRACKET_SOURCE})*")
_RANGE_DASH = re.compile(r"[–—]")
# A code span stays within its paragraph: a stray tick must not swallow the next one's citations.
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.DOTALL)


def fence_opening(line: str) -> str | None:
    """The fence ("```", "~~~~"...) this line opens a code block with, or None."""
    opening = _FENCE_OPEN.match(line)
    if opening is None:
        return None
    fence = opening.group(1)
    if fence[0] == "`" and "`" in line[opening.end() :]:
        return None  # "```code```" on one line is inline code
    return fence


def closes_fence(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip(fence[0])


def citation_numbers(group: str, count: int) -> list[int] | None:
    """ "1, 3" or "2-4" → numbers; None unless every one of them is in 1..count."""
    numbers: list[int] = []
    for item in group.split(","):
        low, _, high = (part.strip() for part in _RANGE_DASH.sub("-", item).partition("-"))
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= count:
            return None
        numbers.extend(range(first, last + 1))
    return numbers


def code_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) offsets of fenced code blocks and inline code spans, where [n] is code, not a citation."""
    spans: list[tuple[int, int]] = []
    prose_start = 0
    fence: str | None = None
    fence_start = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        if fence is None:
            fence = fence_opening(line)
            if fence is not None:
                spans.extend(_inline_code(text, prose_start, offset))
                fence_start = offset
        elif closes_fence(line, fence):
            spans.append((fence_start, offset + len(line)))
            fence, prose_start = None, offset + len(line)
        offset += len(line)
    if fence is not None:  # an unclosed fence runs to the end, as markdown renders it
        spans.append((fence_start, len(text)))
    else:
        spans.extend(_inline_code(text, prose_start, len(text)))
    return spans


def _inline_code(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in INLINE_CODE.finditer(text, start, end)]
