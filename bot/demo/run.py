"""`wikibot demo`: the bundled sample wiki, served by a loopback Confluence, ingested and asked.

The demo goes through the same path as a real deployment: atlassian-python-api over HTTP, parsing,
chunking, embedding, Chroma, retrieval and answering. Nothing needs an account or a key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from adapters.terminal import render
from bot.app import build_core
from bot.config import load_settings
from bot.demo.confluence_fake import ConfluenceFake
from bot.status import left_out
from rag.types import IncomingMessage

DEFAULT_QUESTION = "How do I connect to the VPN from home?"
_USER, _PASSWORD = "demo@lumen.example", "demo-password"


def run_demo(*, question: str | None, data_dir: Path, out: TextIO) -> int:
    with ConfluenceFake(username=_USER, password=_PASSWORD) as fake:
        settings = load_settings(
            confluence_url=fake.base_url,
            confluence_username=_USER,
            confluence_password=_PASSWORD,
            confluence_space="LUMEN",
            data_dir=data_dir,
        )
        core = build_core(settings)
        try:
            out.write(
                f"Ingesting the sample wiki (space LUMEN) from a loopback Confluence at {fake.base_url} ...\n"
            )
            out.flush()
            report = core.sync(full=True)
            out.write(
                f"Indexed {report.added} pages into {report.chunks_total} chunks in {report.duration_s:.1f} s "
                f"({'ok' if report.ok else 'with errors: ' + '; '.join(report.errors)}).\n"
                f"{left_out(report)}\n\n"
            )
            asked = question or DEFAULT_QUESTION
            reply = asyncio.run(
                core.assistant.ask(IncomingMessage(session_key="demo", text=asked, platform="demo"))
            )
            out.write(f"Q: {asked}\n\n{render(reply)}\n\n")
            out.write(
                "Next: talk to it in the terminal with\n"
                f"  DATA_DIR={data_dir} .venv/bin/wikibot chat\n"
                "Set LITELLM_MODEL (and LITELLM_API_BASE / LITELLM_API_KEY) for generated answers; "
                "see README.md.\n"
            )
            return 0 if report.ok and reply.sources else 1
        finally:
            core.close()
