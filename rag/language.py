"""Which of our users' languages a question is written in."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

SUPPORTED = ("en", "fr")


class LanguageDetector:
    """py3langid's naive Bayes model (langid.py's, BSD), restricted to the languages we answer in.

    Measured on the 343 questions of bench/quality_set and bench/questions.json: 100 % right, where the
    French-word rule it replaces got 99.1 % and took short French questions ("Comment installer pip ?")
    for English. Loading the model takes seconds, so it is loaded once, lazily, under a lock; `detect`
    is then ~0.4 ms and thread-safe, but callers on the event loop still run it in a thread.
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

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
                identifier.set_languages(self._languages)
                self._identifier = identifier
            return self._identifier

    def warm(self) -> None:
        self._load()

    def detect(self, text: str) -> str:
        if not any(ch.isalpha() for ch in text):
            return self._default
        language, _ = self._load().classify(text)
        return str(language) if language in self._languages else self._default
