"""`wikibot demo`: the bundled sample wiki, served by a loopback Confluence, ingested and asked.

The demo goes through the same path as a real deployment: atlassian-python-api over HTTP, parsing,
chunking, embedding, Chroma, retrieval and answering. Nothing needs an account or a key.

The source links in the index point to the demo's loopback Confluence, which also serves each page's web
address to a browser, but only while the demo runs: `wikibot demo --chat` keeps it up during a terminal
chat on the demo's index, and `--confluence-port` keeps the links the same from one run to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO

from adapters.terminal import render
from bot.app import build_core
from bot.config import SettingsError, load_settings
from bot.demo.confluence_fake import ConfluenceFake
from bot.status import left_out
from rag.knowledge import Ledger
from rag.ports import Assistant
from rag.types import IncomingMessage

DEFAULT_QUESTION = "How do I connect to the VPN from home?"
DEMO_SPACE = "LUMEN"
_USER, _PASSWORD = "demo@lumen.example", "demo-password"

# The terminal chat, given the demo's assistant and a session key (adapters.terminal.chat in the CLI).
Chat = Callable[[Assistant, str], Coroutine[Any, Any, None]]


def check_demo_data_dir(data_dir: Path) -> None:
    """Refuses a data folder holding another wiki's index: the demo's full ingest would replace it."""
    state = data_dir / "state.sqlite3"
    if not state.is_file():
        return
    ledger = Ledger(state)
    try:
        spaces = ledger.summary().spaces
    finally:
        ledger.close()
    others = [s for s in spaces if s != DEMO_SPACE]
    if others:
        raise SettingsError(
            f"{data_dir} holds the index of space {', '.join(others)}, which the demo would replace: "
            "pass --data-dir with another folder (or unset DATA_DIR)"
        )


def run_demo(
    *,
    question: str | None,
    data_dir: Path,
    out: TextIO,
    confluence_port: int = 0,
    chat: Chat | None = None,
) -> int:
    """Ingests and asks; with ``chat``, then runs it while the loopback Confluence keeps serving the pages.

    Raises SettingsError when the data folder holds another wiki or the port cannot be bound."""
    check_demo_data_dir(data_dir)
    fake = ConfluenceFake(username=_USER, password=_PASSWORD, port=confluence_port, web_pages=True)
    try:
        fake.start()
    except OSError as exc:
        raise SettingsError(
            f"--confluence-port {confluence_port}: cannot serve the demo's Confluence there "
            f"({exc.strerror or exc}): pick another port, or leave it out for a free one"
        ) from None
    try:
        settings = load_settings(
            confluence_url=fake.base_url,
            confluence_username=_USER,
            confluence_password=_PASSWORD,
            confluence_space=DEMO_SPACE,
            data_dir=data_dir,
        )
        core = build_core(settings)
        try:
            out.write(
                f"Ingesting the sample wiki (space {DEMO_SPACE}) from a loopback Confluence at "
                f"{fake.base_url} ...\n"
            )
            out.flush()
            report = core.sync(full=True)
            out.write(
                f"Indexed {report.added} pages into {report.chunks_total} chunks in {report.duration_s:.1f} s "
                f"({'ok' if report.ok else 'with errors: ' + '; '.join(report.errors)}).\n"
                f"{left_out(report)}\n\n"
            )
            asked = question or DEFAULT_QUESTION
            # One conversation per run: the chat continues the demo's question ("and on Linux?").
            session = f"demo:{uuid.uuid4()}"
            reply = asyncio.run(
                core.assistant.ask(IncomingMessage(session_key=session, text=asked, platform="demo"))
            )
            out.write(f"Q: {asked}\n\n{render(reply)}\n\n")
            if chat is not None:
                out.write(
                    f"The links point to the demo's local Confluence at {fake.base_url}: it serves the pages "
                    "while this chat runs, and stops when you leave it.\n\n"
                )
                out.flush()
                with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C leaves the chat, and the demo
                    asyncio.run(chat(core.assistant, session))
                return 0 if report.ok else 1
            out.write(
                f"The links point to the demo's local Confluence at {fake.base_url}, which is up only while "
                "the demo runs: it stops now.\n"
                "Next: talk to it in the terminal with\n"
                f"  DATA_DIR={data_dir} .venv/bin/wikibot demo --chat   (ingests again, serves the pages while you chat)\n"
                f"  DATA_DIR={data_dir} .venv/bin/wikibot chat          (the same index; its links do not open)\n"
                "--confluence-port PORT keeps the links' address the same from one demo run to the next.\n"
                "Set LITELLM_MODEL (and LITELLM_API_BASE / LITELLM_API_KEY) for generated answers; "
                "see README.md.\n"
            )
            return 0 if report.ok and reply.sources else 1
        finally:
            core.close()
    finally:
        fake.stop()
