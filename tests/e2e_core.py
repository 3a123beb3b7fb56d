"""The real core for channel end-to-end tests: sample wiki over the Confluence fake, LLM fake over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from rag.llm import LiteLLMChatModel
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.llm_server import FakeLLM, content_text
from tests.support import PASSWORD, USER, make_core, settings_for


@dataclass(frozen=True)
class WikiPage:
    page_id: str
    title: str
    body: str  # storage format


PRINTER_PAGE = "9500"
PRINTER_BODY = (
    "<h1>Printers</h1><p>The floor printer is called quillprint7 and uses the queue OPS-PRN.</p>"
    "<h2>Linux</h2><p>On Linux, add quillprint7 with <code>lpadmin -p quillprint7</code>.</p>"
)


@contextmanager
def real_core(
    data_dir: Path, llm: FakeLLM, *, pages: Sequence[WikiPage] = (), **settings: Any
) -> Iterator[Core]:
    """A core whose only fakes are the remote services (and a fast hashing embedder); `pages` join the wiki,
    `settings` are set on top of the test's own."""
    with ConfluenceFake(username=USER, password=PASSWORD) as wiki:
        wiki.add_page(page_id=PRINTER_PAGE, title="Printer setup", body=PRINTER_BODY)
        for page in pages:
            wiki.add_page(page_id=page.page_id, title=page.title, body=page.body)
        model = LiteLLMChatModel(
            model="openai/wiki-test", api_base=llm.url, api_key="k", timeout_s=30, num_retries=0
        )
        core = make_core(
            settings_for(wiki, data_dir, **settings), embedder=HashingEmbedder(), chat_model=model
        )
        try:
            assert core.sync().ok
            yield core
        finally:
            core.close()


@pytest.fixture
def e2e_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def e2e_core(tmp_path: Path, e2e_llm: FakeLLM) -> Iterator[Core]:
    with real_core(tmp_path / "data", e2e_llm) as core:
        yield core


async def _until(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def in_order(send: Callable[[str, int], Awaitable[object]]) -> Callable[[str], Awaitable[None]]:
    """A channel driver for the scenario below: the n-th message sent waits for the channel's n-th reply."""
    sent = 0

    async def ask(text: str) -> None:
        nonlocal sent
        sent += 1
        await send(text, sent)

    return ask


async def reset_voids_the_answer_in_flight(
    llm: FakeLLM, ask: Callable[[str], Awaitable[object]], reset: Callable[[], Awaitable[object]]
) -> None:
    """One scenario for every channel: a question whose answer is still at the model, then a reset, then a
    follow-up. The follow-up must reach the model without history: the answer that finished after the
    reset must not have written its turn back."""
    llm.delay_s = 1.5
    first = asyncio.create_task(ask("how do I add the quillprint7 printer?"))
    await _until(lambda: llm.requests)  # the first answer is now in flight
    await reset()
    llm.delay_s = 0
    await first
    llm.requests.clear()
    await ask("and on Linux?")
    condense = [r for r in llm.requests if "standalone question" in content_text(r["messages"][0])]
    assert condense == [], "the follow-up was condensed with history the reset should have cleared"
    assert len(llm.requests[-1]["messages"]) == 2, "the model was sent history after a reset"
