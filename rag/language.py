"""Which of our users' languages a question is written in."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

SUPPORTED = ("en", "fr")
# Below this probability the model's call needs a word only French has: keyword queries ("quillprint7
# printer queue", "VPN") carry too little text for character n-grams and come out French ~0.86.
CONFIDENT = 0.95
_FRENCH_MARKERS = frozenset(
    [
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "du",
        "au",
        "aux",
        "et",
        "est",
        "sont",
        "ce",
        "cette",
        "ces",
        "je",
        "tu",
        "il",
        "nous",
        "vous",
        "ils",
        "mon",
        "ma",
        "mes",
        "ton",
        "ta",
        "notre",
        "votre",
        "pour",
        "dans",
        "sur",
        "avec",
        "sans",
        "sous",
        "entre",
        "comment",
        "pourquoi",
        "quand",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "quoi",
        "qui",
        "que",
        "où",
        "faut",
        "peut",
        "puis",
        "dois",
        "est-ce",
        "qu'est-ce",
        "c'est",
        "n'est",
        "j'ai",
    ]
)
_WORD = re.compile(r"[\w'-]+")


class LanguageDetector:
    """py3langid's naive Bayes model (langid.py's, BSD), restricted to the languages we answer in.

    Measured on the 343 questions of bench/quality_set and bench/questions.json: 100 % right, where the
    French-word rule it replaces got 99.1 % and took short French questions ("Comment installer pip ?")
    for English. A French call the model is unsure of must be backed by a French word or accent.
    Loading the model takes seconds, so it is loaded once, lazily, under a lock; `detect` is then ~0.4 ms
    and thread-safe, but callers on the event loop still run it in a thread.
    """

    def __init__(self, languages: Sequence[str] = SUPPORTED, *, default: str = "en") -> None:
        self._languages = list(languages)
        self._default = default
        self._lock = threading.Lock()
        self._identifier: Any = None

    def _load(self) -> Any:
        with self._lock:
            if self._identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(self._languages)
                self._identifier = identifier
            return self._identifier

    def warm(self) -> None:
        self._load()

    def detect(self, text: str) -> str:
        if not any(ch.isalpha() for ch in text):
            return self._default
        language, probability = self._load().classify(text)
        if language not in self._languages:
            return self._default
        if language != self._default and probability < CONFIDENT and not self._has_marker(text):
            return self._default
        return str(language)

    @staticmethod
    def _has_marker(text: str) -> bool:
        lowered = text.lower()
        return any(ch in "éèêàùçôîâœ" for ch in lowered) or any(
            word in _FRENCH_MARKERS for word in _WORD.findall(lowered)
        )
