"""`wikibot chat`: the terminal channel over the real core, the LLM fake over LiteLLM's HTTP path."""

from __future__ import annotations

import asyncio
import io
import queue
from collections.abc import AsyncIterator

import pytest

from adapters.terminal import PROMPT, chat, render
from bot.app import Core
from rag.types import Reply, Source
from tests.e2e_core import PRINTER_PAGE, reset_voids_the_answer_in_flight
from tests.fakes.llm_server import FakeLLM


class Terminal:
    """One `wikibot chat` window: lines typed in, what it printed out."""

    def __init__(self, core: Core, session_key: str) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.stdin = self  # chat() reads with readline() in a thread, as it reads sys.stdin
        self.stdout = io.StringIO()
        self.typed = 0
        self.task = asyncio.create_task(
            chat(core.assistant, session_key=session_key, stdin=self, stdout=self.stdout)
        )  # type: ignore[arg-type]

    def readline(self) -> str:
        return self._lines.get()

    async def type(self, text: str) -> str:
        """Types a line and waits for the reply printed to it."""
        self.typed += 1
        expected = self.typed + 1
        self._lines.put(text + "\n")
        async with asyncio.timeout(20):
            while self.stdout.getvalue().count(PROMPT) < expected:
                await asyncio.sleep(0.02)
        return self.stdout.getvalue().split(PROMPT)[expected - 1]

    async def close(self) -> None:
        self._lines.put("")  # end of input, as Ctrl-D
        await self.task


@pytest.fixture
async def terminals(e2e_core: Core) -> AsyncIterator[tuple[Terminal, Terminal]]:
    # Two windows on one session, as `wikibot chat --session ops` run twice.
    both = (Terminal(e2e_core, "terminal:ops"), Terminal(e2e_core, "terminal:ops"))
    yield both
    for terminal in both:
        await terminal.close()


async def test_an_answer_in_the_terminal_lists_its_sources_with_links(
    terminals: tuple[Terminal, Terminal],
) -> None:
    printed = await terminals[0].type("which queue does quillprint7 use?")
    assert "OPS-PRN" in printed
    assert "Sources:" in printed and f"/pages/{PRINTER_PAGE}/" in printed


async def test_a_reset_while_an_answer_is_in_flight_leaves_no_history(
    terminals: tuple[Terminal, Terminal], e2e_llm: FakeLLM
) -> None:
    asking, resetting = terminals
    await reset_voids_the_answer_in_flight(e2e_llm, asking.type, lambda: resetting.type("reset"))


def test_the_terminal_shows_no_bidi_control_zero_width_character_or_escape_sequence() -> None:
    source = Source("1", "Gu\u202eide", "https://wiki.example.com/p/\u200b1")
    shown = render(
        Reply(
            text="read\u202e me\u200b \x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\", sources=(source,)
        )
    )
    assert (
        shown
        == "read me ]8;;https://evil.example\\here]8;;\\\n\nSources:\n  [1] Guide - https://wiki.example.com/p/1"
    )
