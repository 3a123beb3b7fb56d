"""Text at the Teams edge: the model's markdown and the wiki's text as Teams markdown in which only our links live.

Teams renders markdown and a subset of HTML in a message (`<a>`, `<img>`, `<at>` mentions among them) and links
bare URLs and host names on its own. So everything from outside is escaped: `&`, `<` and `>` as HTML entities
(`<` and `>` in code too: there is no `<` of theirs in a message at all), a link the model or the wiki writes (`[label](url)`,
an image, `<url>`, a reference definition) becomes its label and its URL in inline code, and so does a bare URL,
host name or e-mail address. What is left of link syntax is broken (`](` gets a space), so a construct the
patterns miss still renders as text. The only live links are the Sources list's, built in `replies.py`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from rag.markdown import INLINE_CODE, closes_fence, fence_opening
from rag.safe_text import ANGLE_LINK, LINK_DEFINITION, MARKDOWN_LINK, URL, clean, is_web_url

# Placeholders use private-use characters, which clean() removes from the text.
_SLOT = "\ue000{}\ue001"
_SLOT_RE = re.compile("\ue000(\\d+)\ue001")
_TAG = re.compile(r"<[^<>]*>")


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_code(text: str) -> str:
    # No tag may start inside code either; an `&` stays as written, as `a=1&b=2` in a URL reads best so (an
    # entity in code can only ever show as a character, never as markup).
    return text.replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code, where Teams links nothing; a backtick inside would end it early, so it becomes ˋ."""
    text = escape_code(text.replace("`", "ˋ").strip())
    return f"`{text}`" if text else ""


def source_url(url: str) -> str | None:
    """A source's URL fit for a markdown link destination, or None when it is not http(s)."""
    url = url.strip()
    if not is_web_url(url):
        return None
    # Parentheses, spaces and angle brackets would end the destination; non-ASCII (bidi controls included) is
    # percent-encoded, so the link keeps its target and shows nothing invisible.
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


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
                out.append(_line(line))
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


def _line(line: str) -> str:
    definition = LINK_DEFINITION.match(line)
    if definition:  # "[x]: url" would make every [x] a link: written without its brackets
        line = f"{definition.group('indent')}{definition.group('label')}:{line[definition.end() :]}"
    return _inline(line)


def _inline(text: str) -> str:
    slots: list[str] = []

    def keep(value: str) -> str:
        slots.append(value)
        return _SLOT.format(len(slots) - 1)

    def inert_link(label: str, url: str) -> str:
        url = url.strip("<> ")
        if not label.strip() or label.strip() == url:
            return keep(code(url))
        # The label may hold code spans already kept (as placeholders): they go back in as rendered.
        pieces = _SLOT_RE.split(label)
        shown = "".join(slots[int(p)] if i % 2 else _inline(p) for i, p in enumerate(pieces)).strip()
        return keep(f"{shown} ({code(url)})" if url else shown)

    text = INLINE_CODE.sub(lambda m: keep(code(m.group(0).strip("`"))), text)
    text = MARKDOWN_LINK.sub(lambda m: inert_link(m.group("label"), m.group("dest")), text)
    text = ANGLE_LINK.sub(lambda m: inert_link(m.group("label") or "", m.group("dest")), text)
    text = URL.sub(lambda m: keep(code(m.group(0))), text)
    text = escape_html(text)
    # A leftover backtick must not pair with one of ours, nor "](" make a link the patterns missed, nor a
    # backslash escape the backtick that opens one of our code spans.
    text = text.replace("`", "ˋ").replace("](", "] (")
    text = re.sub(r"\\+(?=\ue000)", lambda m: m.group(0) * 2, text)
    return _SLOT_RE.sub(lambda m: slots[int(m.group(1))], text)
