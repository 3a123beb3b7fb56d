"""Text from outside (wiki pages, model output) made safe to show: the rules every renderer shares.

Two things no renderer may pass on as written. Invisible formatting characters: a right-to-left override turns
`https://x.example/gpj.exe` into what reads as `…/exe.jpg`, and zero-width characters hide text from the reader
(and from the link detection below). And anything a chat client would make a link of: markdown links, `<url>`
autolinks and bare URLs, host names and e-mail addresses, which Slack and Teams both link on their own. Each
renderer turns what these patterns find into inert text (see `adapters/slack/mrkdwn.py`,
`adapters/teams/markdown.py`); the only live links are the ones it builds itself from a Reply's sources.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# Zero-width joiner and non-joiner are spelling in Persian and Indic scripts and glue emoji sequences (👩‍💻):
# kept between two non-ASCII characters, where that is what they do; anywhere else they only hide things.
_JOINERS = "\u200c\u200d"
# Format (Cf: bidi controls, zero-width spaces, tag characters), controls (Cc, ANSI escapes included) other than
# newline and tab, private use (Co: renderers use it for their placeholders) and lone surrogates (Cs).
_DROPPED_CATEGORIES = {"Cf", "Cc", "Co", "Cs"}
_SUSPECT = re.compile(r"[^\x20-\x7e\n\t]")


def clean(text: str) -> str:
    """The text without invisible formatting characters; line and paragraph separators become newlines."""

    def replace(match: re.Match[str]) -> str:
        char = match.group(0)
        if char in "\u2028\u2029":
            return "\n"
        if char in _JOINERS:
            return char if _joins(text, match.start()) else ""
        return "" if unicodedata.category(char) in _DROPPED_CATEGORIES else char

    return _SUSPECT.sub(replace, text)


def _joins(text: str, index: int) -> bool:
    before = text[index - 1] if index > 0 else " "
    after = text[index + 1] if index + 1 < len(text) else " "
    return all(
        not char.isascii() and not char.isspace() and unicodedata.category(char) not in _DROPPED_CATEGORIES
        for char in (before, after)
    )


# A markdown link or image, `[label](destination "title")`; the destination may hold one level of parentheses.
MARKDOWN_LINK = re.compile(
    r"!?\[(?P<label>[^\[\]\n]*)\]\(\s*"
    r"(?P<dest><[^<>\n]*>|(?:[^\s()]|\([^\s()]*\))*)"
    r"(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?\s*\)"
)
# A CommonMark autolink `<scheme:…>` or `<name@host>`, and Slack's own `<url|label>`.
ANGLE_LINK = re.compile(
    r"<(?P<dest>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>|]*|[^\s<>@|]+@[^\s<>|]+)(?:\|(?P<label>[^<>]*))?>"
)
# A reference definition `[label]: destination`, which makes every `[label]` in the text a link.
LINK_DEFINITION = re.compile(r"^(?P<indent>\s{0,3})\[(?P<label>[^\[\]\n]+)\]:")

# What Slack and Teams link without any markup. Trailing punctuation is the sentence's, as linkifiers read it;
# a host name is any dotted name ending in letters, a superset of real top-level domains (new ones appear all
# the time: `.zip`, `.mov`), so a file name like `setup.py` is shown as code too.
_END = r"[^\s<>`\"'.,;:!?)\]}*_~|]"
_TAIL = rf"(?:[^\s<>`\"'|]*{_END})?"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
URL = re.compile(
    r"(?<![^\W_])(?:"
    rf"[A-Za-z][A-Za-z0-9+.-]*://{_TAIL}"  # any scheme: https, ftp, file, slack…
    rf"|(?:mailto|tel|sms|callto|sip|xmpp):{_END}{_TAIL}"
    rf"|[\w.+%-]+@{_LABEL}(?:\.{_LABEL})+"  # an e-mail address
    rf"|(?:{_LABEL}\.)+[^\W\d_]{{2,63}}(?![^\W_]|-)(?::\d{{1,5}})?(?:[/?#]{_TAIL})?"  # a host, maybe a path
    r")"
)


def is_web_url(url: str) -> bool:
    """Whether a URL may be a live link at all: http(s) only (never javascript:, data:, a relative path)."""
    return re.match(r"https?://[^\s/?#]", url, re.IGNORECASE) is not None


def source_url(url: str) -> str | None:
    """A source's URL fit for a markdown link destination, or None when it is not http(s)."""
    url = url.strip()
    if not is_web_url(url):
        return None
    # Parentheses, spaces and angle brackets would end the destination; non-ASCII (bidi controls included) is
    # percent-encoded, so the link keeps its target and shows nothing invisible.
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")
