"""The real core for channel end-to-end tests: sample wiki over the Confluence fake, LLM fake over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from rag.llm import LiteLLMChatModel
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.llm_server import FakeLLM
from tests.support import PASSWORD, USER, make_core, settings_for

PRINTER_PAGE = "9500"
PRINTER_BODY = (
    "<h1>Printers</h1><p>The floor printer is called quillprint7 and uses the queue OPS-PRN.</p>"
    "<h2>Linux</h2><p>On Linux, add quillprint7 with <code>lpadmin -p quillprint7</code>.</p>"
)


@contextmanager
def real_core(data_dir: Path, llm: FakeLLM) -> Iterator[Core]:
    """A core whose only fakes are the remote services (and a fast hashing embedder)."""
    with ConfluenceFake(username=USER, password=PASSWORD) as wiki:
        wiki.add_page(page_id=PRINTER_PAGE, title="Printer setup", body=PRINTER_BODY)
        model = LiteLLMChatModel(
            model="openai/wiki-test", api_base=llm.url, api_key="k", timeout_s=30, num_retries=0
        )
        core = make_core(settings_for(wiki, data_dir), embedder=HashingEmbedder(), chat_model=model)
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
