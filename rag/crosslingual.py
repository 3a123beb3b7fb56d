"""A French question restated in English search terms, so an English wiki can be searched with it.

The embedding model and the cross-encoder read English: a French question finds its English page only
through the technical words both languages share ("git", "asyncio"), and the cross-encoder cannot judge
whether a passage answers it. Dictionary-based query translation, the classic cross-language retrieval
technique, closes most of that gap at no cost: each French word is looked up in a glossary of IT and
software vocabulary (rag/glossary/fr-en.txt, phrases first: "mot de passe" is "password"); a word the
glossary lacks is tried as a cognate ("statique" → "static", "décorateur" → "decorator") and kept only
when the wiki itself uses that English word; a word the wiki uses as it is ("rebase", "pip") stays.
Anything else is dropped: a French word the wiki never uses can only blur the English query.

The French question is still searched as written too (retrieval fuses both): the translation adds the
English words and never takes the question's own away.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from rag.lexical import tokenize

# French words that carry no topic, left out of the English query (tokenize already drops the commonest).
_FUNCTION_WORDS = frozenset(
    [
        "a",
        "ai",
        "as",
        "avons",
        "avez",
        "ont",
        "suis",
        "es",
        "sommes",
        "etes",
        "etre",
        "avoir",
        "c",
        "d",
        "j",
        "l",
        "m",
        "n",
        "s",
        "t",
        "y",
        "qu",
        "est-ce",
        "ces",
        "cet",
        "mes",
        "tes",
        "ses",
        "mon",
        "ma",
        "ton",
        "ta",
        "leur",
        "leurs",
        "notre",
        "votre",
        "nos",
        "vos",
        "moi",
        "toi",
        "lui",
        "eux",
        "ici",
        "la-bas",
        "bien",
        "tres",
        "faut",
        "peux",
        "peut",
        "pouvez",
        "puis",
        "dois",
        "doit",
        "devez",
        "veux",
        "voudrais",
        "veut",
        "fait",
        "faire",
        "fais",
        "font",
        "sert",
        "quoi",
        "lorsque",
        "comme",
        "si",
        "ne",
        "pas",
        "plus",
        "ni",
        "dont",
        "lequel",
        "celui",
        "celle",
        "ceux",
        "celles",
        "ca",
        "cela",
        "ceci",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "ya",
    ]
)
# French endings and the English ones they usually become, longest first: the first ending a word has gives
# its candidates, and the first candidate the wiki uses is kept. Only words this long are tried: short
# ones make false friends ("temps" → "temp").
_COGNATE_MIN_LENGTH = 6
_COGNATE_ENDINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("isations", ("izations",)),
    ("isation", ("ization",)),
    ("ements", ("ements", "ments")),
    ("ement", ("ement", "ment")),
    ("iques", ("ics", "ical")),
    ("ique", ("ic", "ical")),
    ("aires", ("aries",)),
    ("aire", ("ary",)),
    ("eurs", ("ors", "ers")),
    ("eur", ("or", "er")),
    ("ites", ("ities",)),
    ("ite", ("ity",)),
    ("ifs", ("ives",)),
    ("if", ("ive",)),
    ("ives", ("ives",)),
    ("ive", ("ive",)),
    ("elles", ("al",)),
    ("elle", ("al",)),
    ("els", ("als",)),
    ("el", ("al",)),
    ("iser", ("ize",)),
    ("isee", ("ized",)),
    ("ises", ("izes",)),
    ("ees", ("ed",)),
    ("ee", ("ed",)),
    ("er", ("e", "")),
    ("es", ("s", "es")),
    ("e", ("",)),
    ("s", ("",)),
)
_DOUBLED = re.compile(r"([nmt])\1")
_LONGEST_PHRASE = 4


@dataclass(frozen=True, slots=True)
class Glossary:
    """Folded French terms (a word, or a phrase's content words joined by spaces) → English words."""

    entries: Mapping[str, tuple[str, ...]]

    @classmethod
    def parse(cls, text: str) -> Glossary:
        entries: dict[str, tuple[str, ...]] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            french, english = line.rsplit(":", 1)
            key = " ".join(tokenize(french))
            words = tuple(english.split())
            if key and words:
                entries[key] = tuple(dict.fromkeys(entries.get(key, ()) + words))
        return cls(entries)

    @classmethod
    def french(cls) -> Glossary:
        return cls.parse(resources.files("rag").joinpath("glossary/fr-en.txt").read_text(encoding="utf-8"))


# Which of these terms the wiki's lexical index holds.
KnownTerms = Callable[[Iterable[str]], frozenset[str]]


class QueryTranslator:
    """French → English search terms. Pure and thread-safe; `known` asks the wiki's vocabulary."""

    def __init__(self, glossary: Glossary, *, source_language: str = "fr") -> None:
        self._glossary = glossary
        self.source_language = source_language

    def english(self, question: str, known: KnownTerms) -> str:
        """The question's topic in English words ("" when nothing could be rendered)."""
        terms = tokenize(question)
        # (word, settled): an unsettled word is one only the wiki's vocabulary can keep, render or drop.
        pieces: list[tuple[str, bool]] = []
        i = 0
        while i < len(terms):
            for size in range(min(_LONGEST_PHRASE, len(terms) - i), 0, -1):
                english = self._glossary.entries.get(" ".join(terms[i : i + size]))
                if english is not None:
                    pieces.extend((word, True) for word in english)
                    i += size
                    break
            else:
                if terms[i] not in _FUNCTION_WORDS and len(terms[i]) > 1:
                    pieces.append((terms[i], False))
                i += 1
        pending = {word for word, settled in pieces if not settled}
        candidates = {term: _cognates(term) for term in pending}
        vocabulary = (
            known({c for options in candidates.values() for c in options} | pending)
            if pending
            else frozenset()
        )
        words: list[str] = []
        for word, settled in pieces:
            words.extend((word,) if settled else _kept(word, candidates[word], vocabulary))
        return " ".join(dict.fromkeys(words))


def _kept(term: str, cognates: list[str], vocabulary: frozenset[str]) -> tuple[str, ...]:
    """The word as the wiki writes it, and its likeliest English form the wiki uses ("windows", "window")."""
    own = (term,) if term in vocabulary else ()
    found = next((c for c in cognates if c in vocabulary), None)
    return own if found is None else (*own, found)


def _cognates(term: str) -> list[str]:
    """English forms the French word may have, most likely first."""
    if len(term) < _COGNATE_MIN_LENGTH or not term.isalpha():
        return []
    stems = dict.fromkeys([term, _DOUBLED.sub(r"\1", term), term.replace("th", "t")])
    out: list[str] = []
    for stem in stems:
        for ending, replacements in _COGNATE_ENDINGS:
            if stem.endswith(ending) and len(stem) - len(ending) >= 3:
                base = stem[: len(stem) - len(ending)]
                out.extend(base + r for r in replacements if base + r != term)
                break
    return list(dict.fromkeys(out))
