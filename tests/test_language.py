"""Language detection and follow-up detection, on questions as people type them."""

from __future__ import annotations

import pytest

from rag.followup import TopicLink, topic_link
from rag.language import LanguageDetector


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize(
    ("question", "language"),
    [
        # Short French questions the old French-word rule took for English.
        ("Comment installer pip ?", "fr"),
        ("Comment fusionner deux dictionnaires ?", "fr"),
        ("Pourquoi 0.1 + 0.2 ne donne pas exactement 0.3 ?", "fr"),
        ("Comment me connecter au VPN depuis chez moi ?", "fr"),
        ("c'est quoi un décorateur", "fr"),
        ("How do I connect to the VPN?", "en"),
        ("Which git log option prints just one short line per commit?", "en"),
        ("Is it safe to unpickle data from users?", "en"),
        # Keyword queries: too little text for the model alone, which leans French on them.
        ("quillprint7 printer queue", "en"),
        ("VPN", "en"),
        ("Et sous Linux ?", "fr"),
    ],
)
def test_detects_the_language_of_short_questions(
    detector: LanguageDetector, question: str, language: str
) -> None:
    assert detector.detect(question) == language


def test_text_without_letters_is_taken_for_the_default(detector: LanguageDetector) -> None:
    assert detector.detect("??? 42") == "en"


@pytest.mark.parametrize(
    ("message", "link"),
    [
        ("And on Linux?", TopicLink.CONTINUES),
        ("what about Windows", TopicLink.CONTINUES),
        ("et pour supprimer la branche distante ?", TopicLink.CONTINUES),
        ("OK, and how do I publish it to the remote?", TopicLink.CONTINUES),
        ("why?", TopicLink.CONTINUES),
        ("Can it rotate the file every day at midnight?", TopicLink.MAYBE),
        ("How do I connect to the VPN?", TopicLink.NEW),
        ("Comment me connecter au VPN depuis chez moi ?", TopicLink.NEW),
        ("How do I guess the MIME type of a file from its name?", TopicLink.MAYBE),
    ],
)
def test_a_follow_up_is_told_from_a_new_topic(message: str, link: TopicLink) -> None:
    assert topic_link(message) is link
