"""The terminal channel: `wikibot chat`, a conversation through the same core as Slack and Teams."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from rag.ports import Assistant
from rag.safe_text import clean
from rag.types import IncomingMessage, Reply

PROMPT = "you> "
_QUIT = {"/quit", "/exit", "quit", "exit"}


def render(reply: Reply) -> str:
    # Wiki text and model output reach the terminal as plain text, without the characters that would reorder
    # it (bidi controls), hide it (zero-width) or drive the terminal (escape sequences).
    lines = [clean(reply.text)]
    if reply.sources:
        lines.append("")
        lines.append("Sources:")
        lines.extend(
            f"  [{n}] {clean(s.title)} - {clean(s.url)}" for n, s in enumerate(reply.sources, start=1)
        )
    return "\n".join(lines)


async def chat(
    assistant: Assistant, *, session_key: str, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> None:
    stdout.write("Ask about the wiki. `reset` starts over, /quit (or Ctrl-D) leaves.\n")
    while True:
        stdout.write(PROMPT)
        stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            stdout.write("\n")
            return
        text = line.strip()
        if not text:
            continue
        if text.lower() in _QUIT:
            return
        reply = await assistant.ask(IncomingMessage(session_key=session_key, text=text, platform="terminal"))
        stdout.write(render(reply) + "\n\n")
