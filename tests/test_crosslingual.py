"""A French question restated in the English words an English wiki uses."""

from __future__ import annotations

from collections.abc import Iterable

from rag.crosslingual import Glossary, KnownTerms, QueryTranslator


def _wiki(*words: str) -> KnownTerms:
    vocabulary = frozenset(words)

    def known(terms: Iterable[str]) -> frozenset[str]:
        return frozenset(t for t in terms if t in vocabulary)

    return known


def _english(question: str, *wiki_words: str) -> list[str]:
    known = _wiki(*wiki_words)
    return QueryTranslator(Glossary.french()).english(question, known).split()


def test_the_glossary_renders_phrases_before_their_words() -> None:
    words = _english("Comment réinitialiser mon mot de passe ?")
    assert "password" in words and "reset" in words
    # "mot" alone would be "word": the phrase wins.
    assert "word" not in words


def test_accents_and_case_do_not_matter() -> None:
    assert _english("Comment FUSIONNER deux dictionnaires ?") == _english(
        "comment fusionner deux dictionnaires"
    )
    assert "merge" in _english("fusionner")


def test_a_cognate_is_kept_only_when_the_wiki_uses_that_english_word() -> None:
    assert _english("le polymorphisme des classes", "polymorphism") == ["polymorphism", "classes"]
    # The wiki never says "polymorphism": the guess is dropped rather than searched.
    assert _english("le polymorphisme des classes") == ["classes"]


def test_words_the_wiki_uses_as_they_are_stay_and_french_filler_goes() -> None:
    words = _english(
        "est-ce que je peux faire un rebase interactif avec git ?", "rebase", "git", "interactive"
    )
    assert words == ["rebase", "interactive", "with", "git"]


def test_nothing_is_rendered_from_words_neither_the_glossary_nor_the_wiki_knows() -> None:
    assert _english("réserver une salle au bureau de Luxembourg") == [
        "book",
        "reserve",
        "room",
        "office",
        "desk",
    ]
    assert _english("blorbiste zanguleux") == []


def test_a_glossary_line_without_english_or_colon_is_ignored() -> None:
    glossary = Glossary.parse("# comment\nfichier: file\nbroken line\nvide:\n")
    assert dict(glossary.entries) == {"fichier": ("file",)}
