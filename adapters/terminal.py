"""The terminal channel: `wikibot chat`, and what `ask` and `search` print for a person.

On a terminal, markdown is rendered (rich); piped, the text is written as it is, so scripts and files get the
markdown itself. Either way wiki text and model output are data: without the characters that would reorder
text (bidi controls), hide it (zero-width) or drive the terminal (escape sequences), and with the links they
write shown inert, exactly as Teams gets them (`adapters.teams.markdown`). The only live links are the
Sources', built from the reply's own sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.padding import Padding
from rich.style import Style
from rich.text import Text

from adapters.teams.markdown import to_teams_markdown
from rag.answering import excerpt, passage_body, subheading
from rag.markdown import closes_fence, fence_opening
from rag.ports import Assistant
from rag.safe_text import clean, source_url
from rag.types import Hit, IncomingMessage, Reply, Source

PROMPT = "you> "
_QUIT = {"/quit", "/exit", "quit", "exit"}


def render(reply: Reply) -> str:
    """A reply as plain text: the markdown as written, then one line per source page."""
    lines = [clean(reply.text)]
    if reply.sources:
        lines += ["", "Sources:", *(f"  [{n}] {_plain_source(s)}" for n, s in enumerate(reply.sources, 1))]
    return "\n".join(lines)


def render_passages(hits: Sequence[Hit]) -> str:
    """What `wikibot search` found, as plain text: each page once, with its URL, then its passages."""
    lines: list[str] = []
    for n, (title, url, passages) in enumerate(_by_page(hits), start=1):
        lines.append(f"[{n}] {clean(title)} - {clean(url)}")
        for section, body in passages:
            if section:
                lines.append(f"    § {clean(section)}")
            lines.extend(f"    {line}" if line else "" for line in clean(body).split("\n"))
        lines.append("")
    return "\n".join(lines)


class Screen:
    """Where the terminal channel writes: rendered markdown on a terminal, plain text when piped."""

    def __init__(self, out: TextIO, *, styled: bool | None = None, width: int | None = None) -> None:
        self._out = out
        self.styled = out.isatty() if styled is None else styled
        # markup, emoji codes and highlighting off: nothing in a reply is read as rich's own syntax.
        self.console = Console(
            file=out, force_terminal=self.styled, width=width, markup=False, emoji=False, highlight=False
        )

    def write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def reply(self, reply: Reply) -> None:
        if not self.styled:
            self.write(render(reply) + "\n")
            return
        parts: list[RenderableType] = [_markdown(reply.text)]
        if reply.sources:
            parts += [Text(""), Text("Sources:", style="bold")]
            parts += [_styled_source(n, s) for n, s in enumerate(reply.sources, start=1)]
        self.console.print(Group(*parts))

    @contextlib.contextmanager
    def streaming(self) -> Iterator[_Stream]:
        """The answer as the model writes it: re-rendered in place on a terminal, appended when piped."""
        stream = _Stream(self)
        try:
            yield stream
        finally:
            stream.stop()

    def passages(self, hits: Sequence[Hit]) -> None:
        if not self.styled:
            self.write(render_passages(hits))
            return
        for n, (title, url, passages) in enumerate(_by_page(hits), start=1):
            parts: list[RenderableType] = [_styled_source(n, Source("", title, url), indent="")]
            for section, body in passages:
                if section:
                    parts.append(Padding(Text(f"§ {clean(section)}", style="italic"), (0, 0, 0, 4)))
                parts.append(Padding(_markdown(body), (0, 0, 0, 4)))
            self.console.print(Group(*parts), "")


class _Stream:
    """rag.ports.Progress for the terminal. Styled, a rich Live region shows the draft rendered, at most a few
    times a second, and gives way to the final reply; piped, each draft's new text is written as it comes and
    the final reply only adds what is missing (or starts over on a line of its own when it replaced the draft)."""

    def __init__(self, screen: Screen) -> None:
        self._screen = screen
        self._shown = ""
        self._live: Live | None = None

    async def working(self) -> None:
        pass

    async def draft(self, text: str) -> None:
        screen = self._screen
        if not screen.styled:
            screen.write(clean(text[len(self._shown) :]) if text.startswith(self._shown) else "")
        else:
            if self._live is None:
                self._live = Live(console=screen.console, refresh_per_second=8, transient=True)
                self._live.start()
            self._live.update(_markdown(text))
        self._shown = text

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def finish(self, reply: Reply) -> None:
        self.stop()
        screen = self._screen
        if screen.styled or not self._shown:
            screen.reply(reply)
            return
        if reply.text.startswith(self._shown):
            screen.write(clean(reply.text[len(self._shown) :]) + "\n")
            if reply.sources:
                screen.write("\n" + render(replace(reply, text="")).lstrip("\n") + "\n")
            return
        screen.write("\n\n")
        screen.reply(reply)


def _by_page(hits: Sequence[Hit]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(title, url, [(section, passage)]) per page, in the order of each page's best passage."""
    pages: dict[str, tuple[str, str, list[tuple[str, str]]]] = {}
    for hit in hits:
        chunk = hit.chunk
        _, _, passages = pages.setdefault(chunk.page_id, (chunk.title, chunk.url, []))
        passages.append((subheading(chunk.title, chunk.section), excerpt(passage_body(chunk.text).strip())))
    return list(pages.values())


def _markdown(text: str) -> Markdown:
    # Links written in the text become their label and the URL in code (as for Teams), so neither a
    # reference definition nor a [label](url) can turn a citation or a word into a link; hyperlinks off.
    return Markdown(_hard_breaks(to_teams_markdown(text)), hyperlinks=False)


def _hard_breaks(markdown: str) -> str:
    """Every line break kept, as Slack and Teams show them: wiki passages put a table row or a note on a line
    of its own, which markdown would otherwise run into one paragraph."""
    lines, fence = markdown.split("\n"), None
    for i, line in enumerate(lines):
        if fence is None:
            fence = fence_opening(line)
            if fence is None and line.strip() and i + 1 < len(lines):
                lines[i] = line + "  "  # markdown's hard line break
        elif closes_fence(line, fence):
            fence = None
    return "\n".join(lines)


def _plain_source(source: Source) -> str:
    return f"{clean(source.title)} - {clean(source.url)}"


def _styled_source(n: int, source: Source, *, indent: str = "  ") -> Text:
    line = Text(f"{indent}[{n}] ", style="bold")
    url = source_url(source.url)
    # The title is a terminal hyperlink (OSC 8) only to an http(s) source URL, percent-encoded: nothing in
    # it can end the escape sequence.
    line.append(clean(source.title), style=Style(bold=True, link=url) if url else "bold")
    line.append(f"  {clean(source.url)}", style="dim")
    return line


def _lines(stdin: TextIO) -> asyncio.Queue[str]:
    """Lines typed, read by a daemon thread: a read blocked on the keyboard must not keep the process alive
    after Ctrl-C (a read in asyncio's executor is waited for at exit, until the next Enter)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        while True:
            line = stdin.readline()
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the chat is over and its loop closed
                return
            if not line:
                return

    threading.Thread(target=read, name="terminal-input", daemon=True).start()
    return lines


async def chat(
    assistant: Assistant,
    *,
    session_key: str,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    styled: bool | None = None,
) -> None:
    screen = Screen(stdout, styled=styled)
    typed = _lines(stdin)
    screen.write("Ask about the wiki. `reset` starts over, /quit, Ctrl-D or Ctrl-C leaves.\n")
    while True:
        screen.write(PROMPT)
        line = await typed.get()
        if not line:
            screen.write("\n")
            return
        text = line.strip()
        if not text:
            continue
        if text.lower() in _QUIT:
            return
        with screen.streaming() as stream:
            reply = await assistant.ask(
                IncomingMessage(session_key=session_key, text=text, platform="terminal"), progress=stream
            )
        stream.finish(reply)
        screen.write("\n")
