"""Our terms for keyword search (the lexical index, the follow-up rule and the test embedder share them)."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[a-z0-9_]+(?:[.\-][a-z0-9_]+)*")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Words too common to carry meaning in either of our users' languages.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "my",
        "our",
        "can",
        "de",
        "des",
        "du",
        "la",
        "le",
        "les",
        "un",
        "une",
        "et",
        "est",
        "en",
        "que",
        "qui",
        "quoi",
        "pour",
        "par",
        "sur",
        "dans",
        "au",
        "aux",
        "ce",
        "cette",
        "il",
        "elle",
        "je",
        "nous",
        "vous",
        "on",
        "comment",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "ou",
        "se",
        "sa",
        "son",
        "ses",
        "pas",
        "ne",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-folded terms: "Procédure" and "procedure" match; `kubectl` and ports survive."""
    folded = unicodedata.normalize("NFKD", text.lower())
    # Accents go; any other non-ASCII character can only end a term (the grammar is ASCII), as a space does.
    # Visiting only the non-ASCII characters: a pass over every character was most of an index build.
    folded = _NON_ASCII.sub(_fold, folded)
    return [t for t in _TOKEN.findall(folded) if t not in _STOP]


def _fold(match: re.Match[str]) -> str:
    return "" if unicodedata.combining(match.group()) else " "
