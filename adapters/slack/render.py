"""A core Reply as Slack messages: mrkdwn sections, a Sources context block and the feedback buttons, split
below Slack's limits. A streamed answer's text is `markdown.py`'s; what closes it (Sources, buttons) is here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.slack.feedback import feedback_block
from adapters.slack.mrkdwn import link, to_mrkdwn
from rag.markdown import closes_fence, fence_opening
from rag.safe_text import clean
from rag.types import Reply, Source

# A section block's text is capped at 3000 characters; the margin leaves room for a reopened code fence.
SECTION_LIMIT = 2900
_MAX_SOURCES = 10
_TITLE_CHARS = 80
_FENCE = "```"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One chat.postMessage / chat.update payload: `text` is the notification and accessibility fallback."""

    text: str
    blocks: tuple[dict[str, Any], ...] = ()

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"text": self.text}
        if self.blocks:
            kwargs["blocks"] = [dict(block) for block in self.blocks]
        return kwargs


def render_reply(reply: Reply, *, limit: int = SECTION_LIMIT) -> list[SlackMessage]:
    """The answer in one or more messages; the last one carries the sources and the feedback buttons."""
    body = to_mrkdwn(reply.text, reply.sources) or "_(empty answer)_"
    parts = split_mrkdwn(body, limit=limit)
    sources = sources_line(reply.sources)
    messages: list[SlackMessage] = []
    for index, part in enumerate(parts):
        blocks: list[dict[str, Any]] = [{"type": "section", "text": mrkdwn_text(part)}]
        text = part
        if index == len(parts) - 1:
            blocks += closing_blocks(reply)
            text = f"{part}\n\n{sources}" if sources else part
        messages.append(SlackMessage(text=text, blocks=tuple(blocks)))
    return messages


def closing_blocks(reply: Reply) -> list[dict[str, Any]]:
    """What goes under an answer's text: the Sources line, and the feedback buttons when the answer can be
    rated (it is in the question log)."""
    blocks: list[dict[str, Any]] = []
    sources = sources_line(reply.sources)
    if sources:
        blocks.append({"type": "context", "elements": [mrkdwn_text(sources)]})
    if reply.answer_id:
        blocks.append(feedback_block(reply.answer_id))
    return blocks


def mrkdwn_text(text: str) -> dict[str, Any]:
    # verbatim: Slack adds no links or mentions of its own to the text: every link in it is one we built.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def render_notice(markdown: str) -> SlackMessage:
    """A short message of the bot's own (help, reset, errors), in plain mrkdwn without blocks."""
    return SlackMessage(text=to_mrkdwn(markdown))


def sources_line(sources: Sequence[Source]) -> str:
    links = []
    for number, source in enumerate(sources[:_MAX_SOURCES], start=1):
        title = clean(source.title).strip() or source.page_id or "page"
        if len(title) > _TITLE_CHARS:
            title = title[: _TITLE_CHARS - 1].rstrip() + "…"
        # link() shows a source whose URL is missing or not http(s) as inert text.
        links.append(link(source.url, f"[{number}] {title}"))
    return ("*Sources:* " + " · ".join(links)) if links else ""


def split_mrkdwn(text: str, *, limit: int = SECTION_LIMIT) -> list[str]:
    """Splits at line breaks (hard-wrapping only a longer line); a code block cut in two is closed and reopened."""
    if len(text) <= limit:
        return [text]
    budget = limit - len(_FENCE) - 1  # room to close a code block the cut falls inside
    parts: list[str] = []
    current: list[str] = []
    size = 0
    fence: str | None = None  # the fence of the code block the cut falls in, if any
    for line in _hard_wrap(text.split("\n"), budget - len(_FENCE) - 1):
        if current and size + len(line) + 1 > budget:
            parts.append("\n".join([*current, _FENCE] if fence else current))
            current, size = ([_FENCE], len(_FENCE) + 1) if fence else ([], 0)
        current.append(line)
        size += len(line) + 1
        if fence is None:
            fence = fence_opening(line)
        elif closes_fence(line, fence):
            fence = None
    if current:
        parts.append("\n".join(current))
    return [part.strip("\n") for part in parts if part.strip()]


def _hard_wrap(lines: list[str], width: int) -> list[str]:
    wrapped: list[str] = []
    for line in lines:
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > width // 2 else width
            cut = _outside_markup(line, cut)
            head, line = line[:cut], line[cut:].lstrip(" ")
            if head.count("`") % 2:  # a code span longer than a message: closed here, reopened in the next
                head, line = head + "`", "`" + line
            wrapped.append(head)
        wrapped.append(line)
    return wrapped


def _outside_markup(line: str, cut: int) -> int:
    """Moves a cut back so it splits neither a <url|label> link, an inline code span nor an &amp; entity."""
    head = line[:cut]
    opening = head.rfind("<")
    if opening > head.rfind(">") and opening > 0:
        return opening
    # Half a code span would leave the URL it holds as bare text, which Slack links.
    tick = head.rfind("`")
    if head.count("`") % 2 and tick > 0:
        return tick
    amp = head.rfind("&")
    if amp > head.rfind(";") and cut - amp < 6 and amp > 0:
        return amp
    return cut
