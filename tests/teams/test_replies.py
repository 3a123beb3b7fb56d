"""Reply → Teams message: citations Teams renders, and links every client shows."""

from __future__ import annotations

from adapters.teams.replies import MAX_CITATIONS, answer_activity
from rag.types import Reply, Source


def sources(n: int) -> tuple[Source, ...]:
    return tuple(
        Source(page_id=str(i), title=f"Page [{i}]", url=f"https://wiki.example.com/p/{i}") for i in range(n)
    )


def test_answer_carries_markdown_links_and_a_citation_per_source() -> None:
    activity = answer_activity(Reply(text="Use the portal [1][2].", sources=sources(2))).serialize()

    assert activity["textFormat"] == "markdown"
    assert "[Page (0)](https://wiki.example.com/p/0)" in activity["text"]
    [entity] = activity["entities"]
    assert entity["@type"] == "Message"
    assert entity["additionalType"] == ["AIGeneratedContent"]
    assert [c["position"] for c in entity["citation"]] == [1, 2]
    assert entity["citation"][1]["appearance"]["url"] == "https://wiki.example.com/p/1"
    assert all(len(c["appearance"]["abstract"]) <= 160 for c in entity["citation"])


def test_at_most_ten_citations() -> None:
    activity = answer_activity(Reply(text="Many pages.", sources=sources(14))).serialize()
    assert len(activity["entities"][0]["citation"]) == MAX_CITATIONS
    assert "https://wiki.example.com/p/10" not in activity["text"]


def test_an_answer_without_sources_has_no_citation_entity_and_extractive_is_not_labelled_ai() -> None:
    plain = answer_activity(Reply(text="I could not find this in the wiki.", grounded=False, mode="refusal"))
    assert not plain.serialize().get("entities")
    extractive = answer_activity(Reply(text="From the page [1].", sources=sources(1), mode="extractive"))
    assert "additionalType" not in extractive.serialize()["entities"][0]
