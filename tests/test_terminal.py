"""`wikibot chat`: the terminal channel over the real core, the LLM fake over LiteLLM's HTTP path."""

from __future__ import annotations

import asyncio
import io
import os
import queue
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.terminal import PROMPT, Screen, chat, render
from bot.app import Core
from rag.types import Reply, Source
from tests.e2e_core import PRINTER_PAGE, reset_voids_the_answer_in_flight
from tests.fakes.llm_server import FakeLLM

ROOT = Path(__file__).resolve().parents[1]


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


async def test_a_streamed_answer_is_printed_once_as_it_is_written(
    terminals: tuple[Terminal, Terminal], e2e_llm: FakeLLM
) -> None:
    e2e_llm.set_responder(lambda _: "The queue of quillprint7 is OPS-PRN [1], on the third floor.")
    e2e_llm.word_interval_s = 0.05
    terminal = terminals[0]
    terminal.typed += 1
    terminal._lines.put("which queue does quillprint7 use?\n")
    async with asyncio.timeout(20):  # part of the answer shows before the model is done
        while "OPS-PRN" not in terminal.stdout.getvalue():
            await asyncio.sleep(0.01)
    assert "third floor" not in terminal.stdout.getvalue()
    async with asyncio.timeout(20):
        while terminal.stdout.getvalue().count(PROMPT) < 2:
            await asyncio.sleep(0.02)
    printed = terminal.stdout.getvalue().split(PROMPT)[1]
    assert printed.count("The queue of quillprint7 is OPS-PRN [1], on the third floor.") == 1
    assert printed.count("Sources:") == 1 and f"/pages/{PRINTER_PAGE}/" in printed


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


def _styled(reply: Reply) -> str:
    out = io.StringIO()
    Screen(out, styled=True, width=100).reply(reply)
    return out.getvalue()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OSC8 = re.compile(r"\x1b\]8;[^;]*;([^\x1b]*)\x1b\\")


def test_a_terminal_shows_markdown_rendered_not_its_markup() -> None:
    shown = _styled(
        Reply(
            text="Run **kubectl** _now_ [1].\n```bash\nkubectl get pods\n```\n- first\n- second",
            sources=(Source("1", "Deploys", "https://wiki.example.com/p/1"),),
        )
    )
    text = _ANSI.sub("", _OSC8.sub("", shown))
    assert "\x1b[1m" in shown  # bold, drawn by the terminal
    assert "**" not in text and "_now_" not in text and "```" not in text
    assert "Run kubectl now [1]." in text and "kubectl get pods" in text and "• first" in text


def test_a_terminal_links_only_the_sources() -> None:
    shown = _styled(
        Reply(
            text="See [the portal](https://evil.example/a) and <https://evil.example/b> [1].\n\n"
            "[1]: https://evil.example/c",
            sources=(Source("1", "Guide", "https://wiki.example.com/p/1"),),
        )
    )
    assert _OSC8.findall(shown) == ["https://wiki.example.com/p/1", ""]  # the title's link, and its end
    text = _ANSI.sub("", _OSC8.sub("", shown))
    # Written links stay visible and inert; the citation stays a citation, whatever the text defines.
    assert "https://evil.example/a" in text and "https://evil.example/c" in text and "[1]" in text


def test_piped_output_is_plain_text() -> None:
    out = io.StringIO()  # not a terminal
    Screen(out).reply(Reply(text="Use **the portal** [1].", sources=(Source("1", "VPN", "https://w/p/1"),)))
    assert out.getvalue() == "Use **the portal** [1].\n\nSources:\n  [1] VPN - https://w/p/1\n"


def test_ctrl_c_leaves_the_chat(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    chat = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "chat"],
        env={**base, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data")},
        cwd=tmp_path,
        stdin=subprocess.PIPE,  # open and silent: a user who typed nothing yet
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert chat.stdout is not None
        seen = ""
        while PROMPT not in seen:
            seen += chat.stdout.read(1) or pytest.fail(f"chat ended before its prompt: {chat.stderr}")
        chat.send_signal(signal.SIGINT)
        assert chat.wait(timeout=15) == 0
        assert "Traceback" not in (chat.stderr.read() if chat.stderr else "")
    finally:
        chat.kill()
