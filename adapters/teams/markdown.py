"""Text at the Teams edge: the model's markdown and the wiki's text as Teams markdown in which only our links live.

Teams renders markdown and a subset of HTML in a message (`<a>`, `<img>`, `<at>` mentions among them) and links
bare URLs and host names on its own. So everything from outside is escaped: `&`, `<` and `>` as HTML entities
(`<` and `>` in code too: there is no `<` of theirs in a message at all), a link the model or the wiki writes (`[label](url)`,
an image, `<url>`, a reference definition) becomes its label and its URL in inline code, and so does a bare URL,
host name or e-mail address. What is left of link syntax is broken (`](` gets a space), so a construct the
patterns miss still renders as text. The only live links are the Sources list's, built in `replies.py`. The
rules for a line of prose are `rag.inert_markdown`'s, which Slack's streamed answers share; the code blocks are
Teams' own (a fence longer than any run of backticks inside).
"""

from __future__ import annotations

import re

from rag.inert_markdown import code, escape_code, escape_html
from rag.inert_markdown import line as prose_line
from rag.markdown import closes_fence, fence_opening
from rag.safe_text import MARKDOWN_LINK, URL, clean

__all__ = ["code", "escape_code", "escape_html", "link_label", "plain", "to_teams_markdown"]

_TAG = re.compile(r"<[^<>]*>")


def link_label(text: str) -> str:
    """A page title as the text of one of our links: escaped, with nothing that could end the label early."""
    label = " ".join(clean(text).replace("[", "(").replace("]", ")").replace("`", "ˋ").split())
    # A URL in a title is code, in case a client links it inside our link's text.
    shown, end = [], 0
    for url in URL.finditer(label):
        shown += [escape_html(label[end : url.start()]), code(url.group(0))]
        end = url.end()
    return "".join([*shown, escape_html(label[end:])]) or "page"


def plain(text: str) -> str:
    """Text for a field Teams shows as it is (a citation's name and abstract): no markup, no angle brackets."""
    text = MARKDOWN_LINK.sub(lambda m: m.group("label"), clean(text))
    text = _TAG.sub(" ", text).replace("<", " ").replace(">", " ")
    return " ".join(text.split())


def to_teams_markdown(markdown: str) -> str:
    """Markdown from outside as Teams markdown: formatting kept, HTML and links made inert text."""
    out: list[str] = []
    block: list[str] | None = None
    fence, indent, language = "", "", ""
    for line in clean(markdown).replace("\r\n", "\n").split("\n"):
        if block is None:
            opening = fence_opening(line)
            if opening is None:
                out.append(prose_line(line))
            else:
                block, fence = [], opening
                indent = line[: len(line) - len(line.lstrip())]
                info = line.strip()[len(opening) :].split()
                language = re.sub(r"[^\w+#.-]", "", info[0]) if info else ""
        elif closes_fence(line, fence):
            out.append(_code_block(block, indent, language))
            block = None
        else:
            block.append(escape_code(line))
    if block is not None:  # an unclosed fence still renders as code rather than swallowing the answer
        out.append(_code_block(block, indent, language))
    return "\n".join(out).strip()


def _code_block(lines: list[str], indent: str, language: str) -> str:
    # Our fence is longer than any run of backticks inside, so no line of the block can close it.
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([f"{indent}{fence}{language}", *lines, f"{indent}{fence}"])
