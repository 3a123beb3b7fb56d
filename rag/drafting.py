"""A streamed answer as the user may see it before it is complete.

The model's text arrives in pieces; what a channel shows of it must never be taken back when the rest
arrives: citations numbered as `cite` will number the final reply, a trailing `[1` or `[2][` held until it
is whole, and an answer that may yet turn out to be NO_ANSWER (the model's "not in the passages") held
until it plainly is not. The final Reply is still computed from the whole text: a channel replaces what it
streamed when that reply does not start with it (a refusal, a model failure mid-stream).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answering import NO_ANSWER, bare_line, renumber_citations
from rag.types import Hit

# Brackets at the end of the text seen so far may be the start of a longer run ("[1]" then "[2]" or "-3]").
_TRAILING_BRACKETS = re.compile(r"(?:[ \t]*\[[\d\s,\-–—]*\]?)+[ \t]*$")
_UNFINISHED_BRACKET = re.compile(r"\[[^\]\n]*$")


class Draft:
    """Feed it the model's deltas; it says what to show, each text extending the one before."""

    def __init__(self, hits: Sequence[Hit]) -> None:
        self._hits = hits
        self._raw: list[str] = []
        self._shown = ""

    @property
    def shown(self) -> str:
        return self._shown

    def text(self) -> str:
        """Everything the model said so far, unrendered."""
        return "".join(self._raw)

    def add(self, delta: str) -> str | None:
        """The text to show now, or None when nothing new can be shown yet."""
        if not delta:
            return None
        self._raw.append(delta)
        shown = self._stable(self.text())
        if len(shown) <= len(self._shown) or not shown.startswith(self._shown):
            return None
        self._shown = shown
        return shown

    def _stable(self, raw: str) -> str:
        raw = raw.lstrip()
        first_line = bare_line(raw.split("\n", 1)[0]).upper()
        # "NO", "NO_ANS": the model may be saying the passages do not hold the answer.
        if first_line.startswith(NO_ANSWER) or ("\n" not in raw and NO_ANSWER.startswith(first_line)):
            return ""
        # The last word may still grow ("confi" → "configure"); so may brackets at the end.
        cut = max(raw.rfind(" "), raw.rfind("\n"), raw.rfind("\t"))
        if cut <= 0:
            return ""
        prefix = raw[:cut]
        prefix = _UNFINISHED_BRACKET.sub("", prefix)
        prefix = _TRAILING_BRACKETS.sub("", prefix).rstrip()
        rendered, _ = renumber_citations(prefix, self._hits)
        return rendered
