"""Fusion, page ranking, the reranker's provenance check and the "not in the wiki" policy."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag.abstention import AbstentionPolicy
from rag.rerank import CrossEncoderReranker, RerankerUnavailable, packaged_model_dir
from rag.retrieval import Retrieved, fuse, names, unseen_names
from rag.types import Chunk


def _chunk(page: str, n: int, text: str = "") -> Chunk:
    return Chunk(f"{page}:{n}", page, "S", f"Page {page}", f"https://wiki/{page}", 1, "", "", text)


def test_a_page_found_by_both_rankings_comes_before_pages_found_by_one() -> None:
    a, b, c = _chunk("A", 0), _chunk("B", 0), _chunk("C", 0)
    hits = fuse([[b, a], [c, a]], k=3, max_per_page=2)
    assert hits[0].chunk.page_id == "A"


def test_a_page_answering_in_two_places_beats_a_page_with_one_close_passage() -> None:
    a0, a1, b0 = _chunk("A", 0), _chunk("A", 1), _chunk("B", 0)
    hits = fuse([[b0, a0, a1], [a0, b0, a1]], k=3, max_per_page=2)
    assert [h.chunk.chunk_id for h in hits] == ["A:0", "A:1", "B:0"]


def test_no_page_fills_more_slots_than_allowed() -> None:
    chunks = [_chunk("A", n) for n in range(5)] + [_chunk("B", 0)]
    hits = fuse([chunks], k=4, max_per_page=2)
    assert [h.chunk.page_id for h in hits] == ["A", "A", "B"]


@pytest.fixture(scope="module")
def reranker() -> CrossEncoderReranker:
    return CrossEncoderReranker()


def test_the_reranker_scores_the_answering_passage_above_an_unrelated_one(
    reranker: CrossEncoderReranker,
) -> None:
    answer, unrelated = reranker.score(
        "How do I undo the last commit but keep my changes?",
        [
            "git-reset — Reset current HEAD\n\nUndo a commit: git reset --soft HEAD^ keeps your changes staged.",
            "json — JSON encoder and decoder\n\nThe json module serialises Python objects.",
        ],
    )
    assert answer > 0 > -5 > unrelated


def test_questions_scored_from_many_threads_at_once_get_their_own_scores(
    reranker: CrossEncoderReranker,
) -> None:
    # The server scores from its worker threads, one question's pairs at a time: none gets another's scores.
    passages = [
        "git-reset — Reset current HEAD\n\nUndo a commit: git reset --soft HEAD^ keeps your changes staged.",
        "json — JSON encoder and decoder\n\nThe json module serialises Python objects.",
    ]
    questions = ["How do I undo the last commit?", "How do I serialise a dict to JSON?"] * 3
    alone = [reranker.score(q, passages) for q in questions[:2]] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda q: reranker.score(q, passages), questions))
    for got, expected in zip(together, alone, strict=True):
        assert got == pytest.approx(expected, abs=1e-4)
    assert together[0][0] > together[0][1] and together[1][1] > together[1][0]


def test_a_reranker_file_that_is_not_the_reviewed_one_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "reranker"
    shutil.copytree(packaged_model_dir(), folder)
    with (folder / "tokenizer.json").open("a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(RerankerUnavailable, match="SHA-256"):
        CrossEncoderReranker(folder).score("q", ["p"])


@pytest.mark.parametrize(
    ("retrieved", "language", "abstains"),
    [
        # English: the cross-encoder decides; nothing about the question at all, whatever the cosine.
        (Retrieved((), 0.9, rerank_score=-7.5), "en", True),
        (Retrieved((), 0.9, rerank_score=-6.0), "en", False),
        (Retrieved((), 0.2, rerank_score=1.5), "en", False),
        # Little about it and nothing close in meaning either.
        (Retrieved((), 0.40, rerank_score=-6.0), "en", True),
        (Retrieved((), 0.40, rerank_score=-4.0), "en", False),
        # It names something no passage shown mentions, and the cross-encoder is not convinced.
        (Retrieved((), 0.6, rerank_score=-3.0, unseen_names=("Splunk",)), "en", True),
        (Retrieved((), 0.6, rerank_score=-3.0), "en", False),
        (Retrieved((), 0.6, rerank_score=-1.0, unseen_names=("Splunk",)), "en", False),
        (Retrieved((), 0.4, rerank_score=-1.0, unseen_names=("Splunk",)), "en", True),
        # A French question it read in English is judged the same way.
        (Retrieved((), 0.5, rerank_score=-10.0, translated="reset password"), "fr", True),
        (Retrieved((), 0.25, rerank_score=2.0, translated="merge dictionaries"), "fr", False),
        # A question it could not read is judged by the dense similarity.
        (Retrieved((), 0.5, rerank_score=-10.0), "fr", False),
        (Retrieved((), 0.25, rerank_score=-10.0), "fr", True),
        # No reranker: the dense similarity for every language.
        (Retrieved((), 0.25), "en", True),
        # Lexical only while a rebuild is pending: nothing calibrated to judge by, so answer.
        (Retrieved((), 0.0, dense_used=False, rerank_score=-10.0), "en", False),
    ],
)
def test_not_in_the_wiki_is_decided_by_the_signal_that_reads_the_question(
    retrieved: Retrieved, language: str, abstains: bool
) -> None:
    assert AbstentionPolicy().abstains(retrieved, language) is abstains


def test_the_names_a_question_uses_are_its_products_places_and_acronyms() -> None:
    assert names("Which JVM flags tune G1 pauses on our OpenShift cluster in Luxembourg?") == [
        "JVM",
        "OpenShift",
        "Luxembourg",
    ]
    # A sentence's first word, a version, a path and a contraction are not names.
    assert names("Should I? Then I'm stuck: obj.area in v2.3 and Python's design") == ["Python"]


def test_a_name_counts_as_unseen_only_when_no_passage_mentions_it() -> None:
    passages = [_chunk("A", 0, "Configure the JVM heap with -Xmx."), _chunk("B", 0, "Logs go to files.")]
    assert unseen_names("Which JVM flags and which Splunk index?", passages) == ("Splunk",)
