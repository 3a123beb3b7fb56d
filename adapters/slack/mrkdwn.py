"""Text conversion at the Slack edge: the model's markdown to Slack mrkdwn, and a user's Slack text to plain.

Slack's mrkdwn is not markdown: bold is *one star*, links are <url|label>, there are no headings, and &, < and >
must be escaped. Escaping everything the model wrote also means the bot can never post a live <!channel> or
<@user> ping, whatever the model or the wiki says.

The only live links are the ones built here from the reply's sources (a `[n]` citation, the Sources line). A link
the model or the wiki writes (`[label](url)`, `<url>`, a bare URL, host name or e-mail address, which Slack would
link on its own) is shown as its label and the URL in inline code, where Slack links nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

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
from rag.safe_text import URL, clean, is_web_url
from rag.types import Source

_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_BOLD_MARK = "\ue002"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: str) -> str | None:
    """A source URL fit for <url|label>, or None when it is not http(s) (javascript:, mailto:, relative paths)."""
    url = url.strip()
    if not is_web_url(url):
        return None
    # The characters that would end or split Slack's <url|label> syntax; non-ASCII (bidi controls included) is
    # percent-encoded by quote, so the link keeps its target and shows nothing invisible.
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


def link(url: str, label: str) -> str:
    """A live link: only ever to a source's URL, which the renderer takes from the Reply, never from text."""
    target = safe_url(url)
    if target is None:
        return inert(label)
    return f"<{target.replace('&', '&amp;')}|{escape(clean(label).replace('|', '/'))}>"


def inert(text: str) -> str:
    """Text from outside (a page title) as mrkdwn in which nothing is a link or a mention."""
    return _inline(clean(text), ())


def code(text: str) -> str:
    """Inline code: a backtick inside would end it early and let the rest (a URL) out, so it becomes ˋ."""
    text = escape(text.replace("`", "ˋ").strip())
    return f"`{text}`" if text else ""


def to_mrkdwn(markdown: str, sources: Sequence[Source] = ()) -> str:
    """Converts the model's markdown; `[n]` citations become links to the n-th source's page."""
    markdown = clean(markdown)
    out: list[str] = []
    code: list[str] | None = None
    fence = ""
    for line in markdown.replace("\r\n", "\n").split("\n"):
        if code is None:
            opening = fence_opening(line)
            if opening is None:
                out.append(_convert_line(line, sources))
            else:
                code, fence = (
                    [],
                    opening,
                )  # the language tag is dropped: Slack would print it as the first line
        elif closes_fence(line, fence):
            out.append("```\n" + "\n".join(code) + "\n```")
            code = None
        else:
            code.append(escape(line))
    if code is not None:  # an unclosed fence still renders as code rather than swallowing the answer
        out.append("```\n" + "\n".join(code) + "\n```")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _convert_line(line: str, sources: Sequence[Source]) -> str:
    if RULE.match(line):
        return "──────────"
    heading = HEADING.match(line)
    if heading:
        text = _inline(heading.group(1), sources).replace("*", "")
        return f"*{text}*" if text else ""
    bullet = BULLET.match(line)
    if bullet:
        level = len(bullet.group(1).expandtabs(4)) // 2
        mark = "•" if level == 0 else "◦"
        return "    " * min(level, 3) + f"{mark} {_inline(bullet.group(2), sources)}"
    numbered = NUMBERED.match(line)
    if numbered:
        level = len(numbered.group(1).expandtabs(4)) // 3
        return "    " * min(level, 3) + f"{numbered.group(2)}. {_inline(numbered.group(3), sources)}"
    quote_line = QUOTE.match(line)
    if quote_line:
        return ">" + _inline(quote_line.group(1), sources)
    return _inline(line, sources)


def _inline(text: str, sources: Sequence[Source]) -> str:
    slots = Slots()
    text = INLINE_CODE.sub(lambda m: slots.keep(code(m.group(0).strip("`"))), text)
    text = slots.links(text, code=code, label=lambda part: _inline(part, ()), tidy=_plain_label)
    text = slots.outside(text, lambda t: URL.sub(lambda m: slots.keep(code(m.group(0))), t))
    text = CITATION_RUN.sub(lambda m: slots.keep(_citations(m.group(0), sources)), text)
    # A backtick left over opens no code span of its own: it must not pair with one of ours.
    text = escape(text).replace("`", "ˋ")
    text = _BOLD_ITALIC.sub(lambda m: f"{_BOLD_MARK}_{m.group(1)}_{_BOLD_MARK}", text)
    text = BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD_MARK, "*")
    return slots.restore(text)


def _plain_label(label: str) -> str:
    # Emphasis inside a link's label would pair with our own around it.
    return re.sub(r"(\*\*|__|\*)", "", label).strip()


def _citations(run: str, sources: Sequence[Source]) -> str:
    out: list[str] = []
    for bracket in CITATION.finditer(run):
        numbers = citation_numbers(bracket.group(1), len(sources))
        if numbers is None:
            out.append(escape(bracket.group(0)))  # not a citation we can resolve: kept as written
        else:
            out.extend(link(sources[n - 1].url, f"[{n}]") for n in numbers)
    return "".join(out)


_USER_REF = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL_REF = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL_REF = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")
_URL_REF = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^|>]+)(?:\|([^>]*))?>")


def mentions(text: str) -> set[str]:
    """The user ids a Slack message mentions."""
    return {match.group(1) for match in _USER_REF.finditer(text)}


def to_plain(text: str, *, bot_user_id: str = "") -> str:
    """A user's Slack text as the model should read it: the bot's own mention removed, references spelled."""

    def user(match: re.Match[str]) -> str:
        if bot_user_id and match.group(1) == bot_user_id:
            return ""
        return "@" + (match.group(2) or match.group(1))

    text = _USER_REF.sub(user, text)
    text = _CHANNEL_REF.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL_REF.sub(lambda m: "@" + (m.group(2) or m.group(1)).lstrip("@"), text)
    text = _URL_REF.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip()
