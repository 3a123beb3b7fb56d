"""What a reader could click, or be pinged by, in a message as Slack or Teams would show it.

The checks of issue 13's acceptance: no live link but to a source, no markup or mention from the text, no
invisible formatting character. They read the rendered text the way the clients do: code spans and blocks
link nothing; anything else a client links (its link syntax, a bare URL, host name or e-mail address) counts.
"""

from __future__ import annotations

import re
import unicodedata

# What a client links without markup, read more broadly than the renderers' own pattern (rag/safe_text.py), so a
# gap there shows here: anything with a scheme, "www.", an e-mail address, any dotted name ending in letters.
_AUTOLINKABLE = re.compile(
    r"[A-Za-z][\w+.-]*:(?://|(?=[\w.+-]+@))[^\s`]+|\bwww\.[^\s`]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?<![\w.])[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])[^\s`]*"
)
_CODE = re.compile(r"(`{3,}).*?\1|`[^`\n]*`", re.DOTALL)
# Slack: <url|label> and <url>; <@user>, <#channel> and <!here> are mentions, not links.
_SLACK_LINK = re.compile(r"<([^<>|@#!][^<>|]*)(?:\|[^<>]*)?>")
_SLACK_MENTION = re.compile(r"<[@#!]")
# Teams: a markdown link or image, and an <a href> tag.
_TEAMS_LINK = re.compile(r"\]\(\s*<?([^)\s>]*)|<a\s[^>]*href\s*=\s*[\"']?([^\"'\s>]*)", re.IGNORECASE)
_DEFINITION = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*(\S*)", re.MULTILINE)
TEAMS_MARKUP = re.compile(r"<\s*(img|a|at)\b", re.IGNORECASE)
_JOINERS = "\u200c\u200d"


def slack_live_links(mrkdwn: str) -> list[str]:
    targets = [m.group(1) for m in _SLACK_LINK.finditer(mrkdwn)]
    prose = _SLACK_LINK.sub(" ", _CODE.sub(" ", mrkdwn))
    return targets + [m.group(0) for m in _AUTOLINKABLE.finditer(prose)]


def slack_mentions(mrkdwn: str) -> list[str]:
    return _SLACK_MENTION.findall(mrkdwn)


def teams_live_links(markdown: str) -> list[str]:
    # Markdown reads "\`" as a backtick that opens no code span, and "[x]: url" as a link definition.
    markdown = markdown.replace("\\\\", "\ue000").replace("\\`", "'")
    prose = _CODE.sub(" ", markdown)
    targets = [m.group(1) or m.group(2) for m in _TEAMS_LINK.finditer(prose)]
    targets += [m.group(1) for m in _DEFINITION.finditer(prose)]
    return targets + [m.group(0) for m in _AUTOLINKABLE.finditer(_TEAMS_LINK.sub(" ", prose))]


def invisible(text: str) -> list[str]:
    """Format characters (bidi controls, zero-width spaces…) other than joiners, which clean() keeps in words."""
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) == "Cf" and c not in _JOINERS]
