"""A regression floor for answer quality: a committed slice of the real evaluation set, run in CI.

tests/data/quality_slice is `python bench/corpus.py --slice ...` of bench/.corpus (Python's and git's
manuals as Confluence storage format): 95 pages, the 45 questions they answer (plain, code, table,
French, follow-ups, topic switches) and 29 questions neither manual answers. It is ingested through the
loopback Confluence and the real client, embedded with the default model, reranked with the real
cross-encoder, and asked through WikiAssistant in extractive mode, as bench/quality.py does on the whole
set. The floors sit a few points under what the slice measures, so a retrieval change that costs
recall, ranking or abstention fails here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.quality import run
from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from tests.support import PASSWORD, USER, make_core, settings_for

pytestmark = pytest.mark.slow

SLICE = Path(__file__).resolve().parent / "data" / "quality_slice"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    entries = json.loads((SLICE / "space.json").read_text(encoding="utf-8"))
    ids = {e["key"]: e["id"] for e in entries}
    questions = [
        {**q, "page_ids": [ids[p] for p in q["pages"]]}
        for q in json.loads((SLICE / "questions.json").read_text(encoding="utf-8"))
    ]
    with ConfluenceFake(username=USER, password=PASSWORD, wiki_dir=SLICE) as wiki:
        data = tmp_path_factory.mktemp("quality")
        settings = settings_for(wiki, data, confluence_space="GIT,PY", retrieval_rerank=True)
        core: Core = make_core(settings)
        try:
            report = core.sync()
            assert report.ok and report.added == len(entries)
            yield asyncio.run(run(core, questions, show_misses=True, dump=[]))
        finally:
            core.close()


def test_the_right_page_comes_first_or_close(result: dict[str, Any]) -> None:
    overall = result["overall"]
    assert overall["recall_at_5"] >= RECALL_AT_5, result["misses"]
    assert overall["mrr_at_10"] >= MRR_AT_10, result["misses"]


def test_follow_ups_and_new_topics_in_one_session_find_their_page(result: dict[str, Any]) -> None:
    kinds = result["by_kind"]
    assert kinds["followup"]["recall_at_5"] >= 0.5
    assert kinds["topic_switch"]["recall_at_5"] >= 0.75


def test_questions_the_wiki_cannot_answer_are_refused_and_answerable_ones_are_not(
    result: dict[str, Any],
) -> None:
    abstention = result["abstention"]
    assert abstention["unanswerable_abstained"] >= ABSTAINED, result["misses"]
    assert abstention["answerable_refused"] <= REFUSED, abstention["answerable_refused_ids"]


def test_every_question_is_read_in_its_language(result: dict[str, Any]) -> None:
    assert result["language_detection_accuracy"] == 1.0


# Measured on the slice when the floor was set (French questions also searched in English, the
# three-rule "not in the wiki"): recall@5 1.000, MRR@10 0.957, all 29 unanswerable questions refused,
# 2 of 45 answerable ones refused. Before: 0.978, 0.935, 86 %, 2 of 45.
RECALL_AT_5 = 0.95
MRR_AT_10 = 0.90
ABSTAINED = 0.90
REFUSED = 0.07
