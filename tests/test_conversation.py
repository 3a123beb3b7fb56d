"""The core as a user meets it: questions in, cited answers out, sessions kept apart (LLM fake over HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from rag.llm import LiteLLMChatModel
from rag.types import IncomingMessage
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.llm_server import FakeLLM, content_text, default_responder
from tests.support import PASSWORD, USER, make_core, settings_for


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceFake]:
    with ConfluenceFake(username=USER, password=PASSWORD) as fake:
        fake.add_page(
            page_id="9500",
            title="Printer setup",
            body="<h1>Printers</h1><p>The floor printer is called quillprint7 and uses the queue OPS-PRN.</p>"
            "<h2>Linux</h2><p>On Linux, add quillprint7 with <code>lpadmin -p quillprint7</code>.</p>",
        )
        yield fake


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


def _model(llm: FakeLLM) -> LiteLLMChatModel:
    return LiteLLMChatModel(
        model="openai/wiki-test", api_base=llm.url, api_key="k", timeout_s=10, num_retries=0
    )


@pytest.fixture
def core(wiki: ConfluenceFake, llm: FakeLLM, tmp_path: Path) -> Iterator[Core]:
    core = make_core(
        settings_for(wiki, tmp_path / "data"), embedder=HashingEmbedder(), chat_model=_model(llm)
    )
    assert core.sync().ok
    yield core
    core.close()


async def _ask(core: Core, text: str, session: str = "s1") -> Any:
    return await core.assistant.ask(IncomingMessage(session_key=session, text=text))


def _is_condense(request: dict[str, Any]) -> bool:
    return "standalone question" in content_text(request["messages"][0])


def _answer_requests(llm: FakeLLM) -> list[dict[str, Any]]:
    return [r for r in llm.requests if not _is_condense(r)]


async def test_answer_cites_the_page_it_used_with_its_link(core: Core, llm: FakeLLM) -> None:
    reply = await _ask(core, "What is the floor printer quillprint7 queue?")
    assert reply.grounded and reply.mode == "llm"
    assert "[1]" in reply.text
    assert reply.sources[0].page_id == "9500"
    assert reply.sources[0].url.startswith(core.settings.confluence_url)
    assert "/pages/9500" in reply.sources[0].url
    prompt = str(llm.last_request["messages"])
    assert "quillprint7" in prompt and "<passages>" in prompt


async def test_follow_up_is_condensed_with_its_history_before_retrieval(core: Core, llm: FakeLLM) -> None:
    llm.set_responder(
        lambda r: "How do I add quillprint7 on Linux?" if _is_condense(r) else default_responder(r)
    )
    await _ask(core, "How do I add the quillprint7 printer?")
    llm.requests.clear()
    reply = await _ask(core, "And on Linux?")

    condense = [r for r in llm.requests if _is_condense(r)]
    assert len(condense) == 1
    transcript = "\n".join(content_text(m) for m in condense[0]["messages"])
    assert "How do I add the quillprint7 printer?" in transcript and "And on Linux?" in transcript
    # Retrieval and the answer prompt use the condensed question; the earlier turns ride along.
    answer = _answer_requests(llm)[-1]
    assert "Question: How do I add quillprint7 on Linux?" in content_text(answer["messages"][-1])
    assert any("quillprint7" in content_text(m) for m in answer["messages"][1:-1])
    assert "lpadmin" in content_text(answer["messages"][-1])
    assert reply.sources[0].page_id == "9500"


async def test_not_in_the_wiki_says_so_without_sources(core: Core, llm: FakeLLM) -> None:
    llm.set_responder(lambda request: "NO_ANSWER")
    reply = await _ask(core, "What is the airspeed velocity of an unladen swallow?")
    assert not reply.grounded and reply.sources == ()
    assert "couldn't find" in reply.text


async def test_not_found_is_said_in_french_for_a_french_question(core: Core, llm: FakeLLM) -> None:
    llm.set_responder(lambda request: "NO_ANSWER")
    reply = await _ask(core, "Quelle est la couleur préférée du directeur ?")
    assert "Je n'ai pas trouvé" in reply.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", "Ask me anything"), ("   ", "Ask me anything"), ("x" * 2001, "too long")],
)
async def test_empty_or_oversized_question_gets_a_clear_message(
    core: Core, llm: FakeLLM, text: str, expected: str
) -> None:
    reply = await _ask(core, text)
    assert expected in reply.text and reply.mode == "refusal"
    assert llm.requests == []


async def test_two_concurrent_sessions_never_see_each_others_history(core: Core, llm: FakeLLM) -> None:
    llm.delay_s = 0.2
    await asyncio.gather(
        _ask(core, "alpha question about quillprint7", "user-a"),
        _ask(core, "bravo question about lpadmin", "user-b"),
    )
    llm.requests.clear()
    await asyncio.gather(_ask(core, "and then alpha?", "user-a"), _ask(core, "and then bravo?", "user-b"))
    for request in llm.requests:
        text = str(request["messages"])
        assert not ("alpha" in text and "bravo" in text), "a prompt mixed two sessions"
    assert len(llm.requests) == 4


async def test_reset_forgets_the_history(core: Core, llm: FakeLLM) -> None:
    await _ask(core, "How do I add the quillprint7 printer?")
    reset = await _ask(core, "reset")
    assert "forgot" in reset.text
    llm.requests.clear()
    await _ask(core, "And on Linux?")
    assert not [r for r in llm.requests if _is_condense(r)]
    assert len(_answer_requests(llm)[-1]["messages"]) == 2  # system + question, no history


async def test_a_failing_model_falls_back_to_labelled_passages(core: Core, llm: FakeLLM) -> None:
    llm.fail(500, times=10)
    reply = await _ask(core, "What is the quillprint7 queue?")
    assert reply.mode == "extractive" and "unavailable" in reply.text
    assert reply.sources and reply.sources[0].page_id == "9500"


async def test_extractive_mode_without_a_model_answers_with_links(
    wiki: ConfluenceFake, tmp_path: Path
) -> None:
    core = make_core(
        settings_for(wiki, tmp_path / "x", retrieval_min_similarity=0.2), embedder=HashingEmbedder()
    )
    try:
        core.sync()
        reply = await _ask(core, "quillprint7 printer queue")
        assert reply.mode == "extractive" and "Extractive answer" in reply.text
        assert reply.sources[0].page_id == "9500"
        assert "OPS-PRN" in reply.text
    finally:
        core.close()


async def test_an_empty_index_says_an_ingest_is_needed(tmp_path: Path) -> None:
    core = make_core(settings_for(None, tmp_path / "empty"), embedder=HashingEmbedder())
    try:
        reply = await _ask(core, "anything?")
        assert "wikibot ingest" in reply.text and not reply.sources
    finally:
        core.close()


async def test_reset_during_a_slow_answer_leaves_no_history_behind(core: Core, llm: FakeLLM) -> None:
    llm.delay_s = 1.0
    slow = asyncio.create_task(_ask(core, "How do I add the quillprint7 printer?"))
    await asyncio.sleep(0.2)
    await _ask(core, "reset")
    await slow
    llm.delay_s = 0
    llm.requests.clear()
    await _ask(core, "And on Linux?")
    assert not [r for r in llm.requests if _is_condense(r)], (
        "the answer finished after the reset kept its turn"
    )


async def test_follow_ups_of_one_session_are_answered_in_order(core: Core, llm: FakeLLM) -> None:
    llm.delay_s = 0.3
    await asyncio.gather(_ask(core, "first about quillprint7"), _ask(core, "second about lpadmin"))
    second_prompt = str(_answer_requests(llm)[-1]["messages"])
    assert "first about quillprint7" in second_prompt, "the later question must see the earlier turn"


async def test_a_new_question_in_the_same_chat_is_not_glued_to_the_previous_one(
    wiki: ConfluenceFake, tmp_path: Path
) -> None:
    core = make_core(settings_for(wiki, tmp_path / "topics"), embedder=HashingEmbedder())
    try:
        core.sync()
        first = await _ask(core, "How do I reset my MFA token?", session="chat")
        assert first.sources[0].page_id in {"1012", "1013"}
        vpn = await _ask(core, "How do I connect to the VPN?", session="chat")
        assert vpn.sources[0].page_id in {"1004", "1005"}
        # A follow-up that leans on the topic still gets it ("and if it fails?" is about the VPN).
        follow_up = await core.answerer.retrieve("And if it fails?", await core.assistant.history("chat"))
        assert follow_up.hits[0].chunk.page_id in {"1004", "1005"}
        french = await _ask(core, "Comment me connecter au VPN depuis chez moi ?", session="chat")
        assert french.text.startswith("_Réponse extractive")
    finally:
        core.close()


class _CountingQueries(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return super().embed_query(text)


async def test_a_question_is_embedded_once_and_a_follow_up_once_per_reading(
    wiki: ConfluenceFake, tmp_path: Path
) -> None:
    embedder = _CountingQueries()
    core = make_core(settings_for(wiki, tmp_path / "once"), embedder=embedder)
    try:
        core.sync()
        embedder.queries.clear()
        await _ask(core, "How do I connect to the VPN?", session="chat")
        # Dense, lexical and the cross-encoder share one reading of the question: one model call.
        assert len(embedder.queries) == 1
        embedder.queries.clear()
        await _ask(core, "And if it fails?", session="chat")
        # A follow-up is read in its context (and alone, when it may stand alone): each reading once.
        assert 1 <= len(embedder.queries) <= 2 and len(set(embedder.queries)) == len(embedder.queries)
        assert any("VPN" in q for q in embedder.queries)
    finally:
        core.close()
