"""Reply → Teams message: markdown text plus Teams citation entities for the [n] markers.

Citations: Teams renders each `[n]` of the text as a pill that opens the cited page (a schema.org Message
entity with one Claim per source, at most 10, as Teams allows). Clients that ignore the entity (the
Bot Framework Emulator, notifications) still get a "Sources" list of markdown links under the answer.
Those are the only live links: the text itself goes through `to_teams_markdown`, where every link, HTML tag
and mention from the model or the wiki is inert text.
"""

from __future__ import annotations

from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Entity

from adapters.teams.markdown import link_label, plain, source_url, to_teams_markdown
from rag import texts
from rag.types import Reply, ReplyKind, Source

MAX_CITATIONS = 10
_ABSTRACT_MAX = 160
_NAME_MAX = 80

WELCOME_TEXT = (
    "Hi, I'm WikiBot. Ask me anything about our Confluence wiki and I answer with links to the pages "
    "I used; follow-up questions keep the context of the conversation. In a channel, @mention me; "
    "each thread is its own conversation. Type `reset` (or `/wiki-reset`) to start over."
)


class _OpenEntity(Entity):  # type: ignore[misc]
    """An entity that keeps its extra keys on the wire (the schema's Entity serializes only `type`)."""

    _attribute_map = {  # noqa: RUF012 - msrest reads this class attribute
        "type": {"key": "type", "type": "str"},
        "additional_properties": {"key": "", "type": "{object}"},
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _sources_block(sources: tuple[Source, ...]) -> str:
    lines = [
        f"{i}. [{link_label(s.title)}]({url})"
        for i, s in enumerate(sources, start=1)
        if (url := source_url(s.url)) is not None
    ]
    return "\n\n**Sources**\n\n" + "\n".join(lines) if lines else ""


def citation_entity(sources: tuple[Source, ...], *, ai_generated: bool) -> _OpenEntity | None:
    claims: list[dict[str, Any]] = []
    for position, source in enumerate(sources[:MAX_CITATIONS], start=1):
        title = plain(source.title) or "Wiki page"
        appearance: dict[str, Any] = {
            "@type": "DigitalDocument",
            "name": _clip(title, _NAME_MAX),
            "abstract": _clip(f"Confluence page: {title}", _ABSTRACT_MAX),
        }
        url = source_url(source.url)
        if url is not None:
            appearance["url"] = url
        claims.append({"@type": "Claim", "position": position, "appearance": appearance})
    if not claims:
        return None
    properties: dict[str, Any] = {
        "@type": "Message",
        "@context": "https://schema.org",
        "@id": "",
        "citation": claims,
    }
    if ai_generated:
        properties["additionalType"] = ["AIGeneratedContent"]
    return _OpenEntity(type="https://schema.org/Message", additional_properties=properties)


def reply_activity(reply: Reply) -> Activity:
    """An answer with its citations; the bot's own words (a notice, an error) as a plain message."""
    if reply.kind is not ReplyKind.ANSWER:
        return text_activity(reply.text)
    return answer_activity(reply)


def answer_activity(reply: Reply) -> Activity:
    sources = reply.sources[:MAX_CITATIONS]
    text = (to_teams_markdown(reply.text) or texts.FAILURE) + _sources_block(sources)
    entity = citation_entity(sources, ai_generated=reply.mode == "llm")
    return Activity(
        type=ActivityTypes.message,
        text=text,
        text_format="markdown",
        entities=[entity] if entity is not None else None,
    )


def text_activity(text: str) -> Activity:
    """A message in the bot's own words, escaped all the same: a notice may quote what it was sent."""
    return Activity(type=ActivityTypes.message, text=to_teams_markdown(text), text_format="markdown")


def typing_activity() -> Activity:
    return Activity(type=ActivityTypes.typing)
