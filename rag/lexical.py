"""Our terms for keyword search (the lexical index, the follow-up rule and the test embedder share them)."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[a-z0-9_]+(?:[.\-][a-z0-9_]+)*")
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
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return [t for t in _TOKEN.findall(folded) if t not in _STOP]
