"""The model's answer as the standard markdown Slack streams (`markdown_text`), inert, and growing only.

A stream can only be appended to: what was sent stays. So `streamed(draft)` renders only what will not change
when the draft grows: whole lines, and of the unfinished last line the part `rag.inert_markdown.settled` vouches
for; a code block's lines as they end (its fence is the model's own, so no line inside can close it). With
`final=True` the text is complete: everything is rendered, and a code block left open is closed. For a text that
extends another, the rendering of the longer one starts with the shorter one's.

Prose lines go through `rag.inert_markdown.line`, the rules Teams uses: entities for `&`, `<` and `>` (so no
`<@U123>`, `<!here>` or `<url|label>` survives), links and bare URLs shown as text and code. The only links
of a streamed answer are the Sources under it (`adapters/slack/render.py`), never in this text.
"""

from __future__ import annotations

import re

from rag.inert_markdown import escape_code, settled
from rag.inert_markdown import line as prose_line
from rag.markdown import closes_fence, fence_opening
from rag.safe_text import clean

# A line that may still become a fence: only spaces so far, or a run of ``` or ~~~ at its start.
_MAYBE_FENCE = re.compile(r"[ \t]*(?:(`{3,}|~{3,}).*|`{0,2}|~{0,2})", re.DOTALL)


def streamed(markdown: str, *, final: bool = False) -> str:
    """The rendering of what of `markdown` is settled (all of it when `final`)."""
    lines = clean(markdown).replace("\r\n", "\n").split("\n")
    last = lines.pop() if not final else None
    out: list[str] = []
    fence, indent = "", ""
    in_code = False
    for text in lines:
        if not in_code:
            opening = fence_opening(text)
            if opening is None:
                out.append(prose_line(text))
            else:
                in_code, fence = True, opening
                indent = text[: len(text) - len(text.lstrip())]
                info = text.strip()[len(opening) :].split()
                language = re.sub(r"[^\w+#.-]", "", info[0]) if info else ""
                out.append(f"{indent}{fence}{language}")
        elif closes_fence(text, fence):
            out.append(f"{indent}{fence}")
            in_code = False
        else:
            out.append(escape_code(text))
    if last is None:
        if in_code:  # an unclosed fence still renders as code rather than swallowing the answer
            out.append(f"{indent}{fence}")
        return "\n".join(out)
    return "\n".join([*out, _unfinished(last, in_code=in_code, fence=fence)])


def _unfinished(text: str, *, in_code: bool, fence: str) -> str:
    """What of the last line, not yet ended, renders as it will once it is."""
    if in_code:
        # Code is escaped character by character; only a line that may yet close the block waits.
        return "" if not text.strip().strip(fence[0]) else escape_code(text)
    if _MAYBE_FENCE.fullmatch(text):
        return ""
    return prose_line(text[: settled(text)])
