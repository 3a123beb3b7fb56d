"""Answers streamed as the model writes them: what a channel shows while it waits, through the real LiteLLM
streaming path against the loopback model."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from rag.answering import MODEL_DOWN_INTRO
from rag.drafting import Draft
from rag.types import Chunk, Hit, IncomingMessage
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.llm_server import FakeLLM
from tests.support import make_core, settings_for


class Recorder:
    """rag.ports.Progress as a channel would see it."""

    def __init__(self) -> None:
        self.working_calls = 0
        self.drafts: list[str] = []

    async def working(self) -> None:
        self.working_calls += 1

    async def draft(self, text: str) -> None:
        self.drafts.append(text)


@pytest.fixture
def llm(e2e_llm: FakeLLM) -> FakeLLM:
    return e2e_llm


@pytest.fixture
def core(e2e_core: Core) -> Core:
    """The channels' end-to-end core: the sample wiki and its printer page, the loopback model."""
    return e2e_core


async def _ask(core: Core, text: str, progress: Recorder) -> object:
    return await core.assistant.ask(IncomingMessage(session_key="s1", text=text), progress=progress)


async def test_the_answer_streams_in_order_and_the_final_reply_continues_it(core: Core, llm: FakeLLM) -> None:
    llm.set_responder(lambda _: "The floor printer uses the queue OPS-PRN [1], set up by the desk.")
    progress = Recorder()
    reply = await core.assistant.ask(
        IncomingMessage(session_key="s1", text="Which queue does quillprint7 use?"), progress=progress
    )
    assert progress.working_calls == 1
    assert len(progress.drafts) >= 3, progress.drafts
    for before, after in itertools.pairwise(progress.drafts):
        assert after.startswith(before) and len(after) > len(before)
    assert progress.drafts[0].startswith("The")
    # The last word is held until the model says it is whole; the final reply has it all.
    assert reply.text == "The floor printer uses the queue OPS-PRN [1], set up by the desk."  # type: ignore[attr-defined]
    assert reply.text.startswith(progress.drafts[-1])  # type: ignore[attr-defined]
    assert [s.page_id for s in reply.sources] == ["9500"]  # type: ignore[attr-defined]
    assert llm.last_request.get("stream") is True


async def test_citations_stream_with_the_numbers_of_the_final_sources(core: Core, llm: FakeLLM) -> None:
    # Passage 1 is the printer page; a citation of it streams as [1] once its bracket is closed.
    llm.set_responder(lambda _: "Use OPS-PRN [1] for it.")
    progress = Recorder()
    reply = await _ask(core, "Which queue does quillprint7 use?", progress)
    assert all("[" not in d or "[1]" in d for d in progress.drafts), progress.drafts
    assert "Use OPS-PRN [1]" in progress.drafts[-1]
    assert reply.text == "Use OPS-PRN [1] for it."  # type: ignore[attr-defined]


async def test_a_model_saying_no_answer_streams_nothing(core: Core, llm: FakeLLM) -> None:
    llm.set_responder(lambda _: "NO_ANSWER")
    progress = Recorder()
    reply = await _ask(core, "Which queue does quillprint7 use?", progress)
    assert progress.drafts == []
    assert not reply.grounded  # type: ignore[attr-defined]
    assert "couldn't find" in reply.text  # type: ignore[attr-defined]


async def test_a_model_failing_mid_answer_ends_with_the_passages(core: Core, llm: FakeLLM) -> None:
    llm.set_responder(lambda _: "The floor printer uses the queue OPS-PRN and more words follow here")
    llm.cut_stream_after = 4
    progress = Recorder()
    reply = await _ask(core, "Which queue does quillprint7 use?", progress)
    assert progress.drafts, "part of the answer was shown before the failure"
    assert reply.mode == "extractive"  # type: ignore[attr-defined]
    assert reply.text.startswith(MODEL_DOWN_INTRO["en"])  # type: ignore[attr-defined]
    assert not reply.text.startswith(progress.drafts[-1])  # type: ignore[attr-defined]
    assert "quillprint7" in reply.text  # type: ignore[attr-defined]


async def test_without_progress_the_model_is_not_asked_to_stream(core: Core, llm: FakeLLM) -> None:
    reply = await core.assistant.ask(
        IncomingMessage(session_key="s1", text="Which queue does quillprint7 use?")
    )
    assert reply.grounded  # type: ignore[attr-defined]
    assert not llm.last_request.get("stream")


async def test_passages_without_a_model_are_not_streamed(fake: ConfluenceFake, tmp_path: Path) -> None:
    core = make_core(settings_for(fake, tmp_path / "data"), embedder=HashingEmbedder())
    try:
        assert core.sync().ok
        progress = Recorder()
        reply = await _ask(core, "How do I connect to the VPN from home?", progress)
        assert reply.mode == "extractive"  # type: ignore[attr-defined]
        assert progress.working_calls == 1 and progress.drafts == []
    finally:
        core.close()


def _hits(*titles: str) -> list[Hit]:
    return [
        Hit(Chunk(f"c{n}", f"p{n}", "S", title, f"https://w/{n}", 1, "", title, f"{title}\n\nbody"), 1.0)
        for n, title in enumerate(titles, start=1)
    ]


def _stream(draft: Draft, text: str, size: int = 1) -> list[str]:
    shown = []
    for start in range(0, len(text), size):
        out = draft.add(text[start : start + size])
        if out is not None:
            shown.append(out)
    return shown


def test_a_draft_renumbers_citations_as_the_final_reply_will() -> None:
    draft = Draft(_hits("Alpha", "Beta", "Gamma"))
    shown = _stream(draft, "Gamma says so [3] and Alpha too [1][3] in the end.")
    assert shown[-1] == "Gamma says so [1] and Alpha too [2][1] in the"
    assert not any(s.endswith("[") or "[3" in s for s in shown)


def test_a_draft_never_shows_half_a_citation_run() -> None:
    draft = Draft(_hits("Alpha", "Beta"))
    shown = _stream(draft, "It works [1] [2] fine here.")
    for before, after in itertools.pairwise(shown):
        assert after.startswith(before)
    assert shown[-1] == "It works [1][2] fine"


def test_a_draft_holds_what_may_become_no_answer() -> None:
    draft = Draft(_hits("Alpha"))
    assert _stream(draft, "**NO_ANSWER** the passages say nothing about it") == []
    french = Draft(_hits("Alpha"))
    assert _stream(french, "Non, il faut passer par le portail [1].")[-1].startswith("Non, il faut")
