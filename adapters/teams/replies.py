"""Reply → Teams message: markdown text plus Teams citation entities for the [n] markers.

Citations: Teams renders each `[n]` of the text as a pill that opens the cited page (a schema.org Message
entity with one Claim per source, at most 20: Teams refuses a message with more). Clients that ignore the
entity (the Bot Framework Emulator, notifications) still get a "Sources" list of markdown links under the
answer. Those are the only live links: the text itself goes through `to_teams_markdown`, where every link,
HTML tag and mention from the model or the wiki is inert text.

The same root entity carries the AI label, on text a model wrote only; the feedback buttons
(`channelData.feedbackLoop`) go on answers the question log holds, the only ones a click can rate.
Streaming (personal chats, `streaming.py`) sends `typing` updates with a `streaminfo` entity and ends with
the final message here, which names the stream.
"""

from __future__ import annotations

from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Entity

from adapters.teams.markdown import link_label, plain, to_teams_markdown
from rag import texts
from rag.safe_text import source_url
from rag.types import Reply, ReplyKind, Source

# Teams' own limit: a message with more citations is refused (400), and the Sources list follows the pills.
MAX_CITATIONS = 20
_ABSTRACT_MAX = 160
_NAME_MAX = 80

WELCOME_TEXT = (
    "Hi, I'm WikiBot. Ask me anything about our Confluence wiki and I answer with links to the pages "
    "I used; follow-up questions keep the context of the conversation. In a channel, @mention me; "
    "each thread is its own conversation. Type `reset` (or `/wiki-reset`) to start over."
)
# The informative update of a stream: what a personal chat shows until the model writes.
STREAM_WORKING_TEXT = "Looking through the wiki…"
# What ends a stream that nears Teams' two minutes with nothing written yet; the answer follows as a message.
STREAM_STILL_WORKING_TEXT = "This is taking longer than usual: I'll post the answer here when it is ready."
_MESSAGE_ENTITY = "https://schema.org/Message"
_STREAM_ENTITY = "streaminfo"


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


def message_entity(sources: tuple[Source, ...], *, ai_generated: bool) -> _OpenEntity | None:
    """The one root schema.org Message entity: the citations, and the AI label when a model wrote the text."""
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
    if not claims and not ai_generated:
        return None
    properties: dict[str, Any] = {"@type": "Message", "@context": "https://schema.org", "@id": ""}
    if claims:
        properties["citation"] = claims
    if ai_generated:
        properties["additionalType"] = ["AIGeneratedContent"]
    return _OpenEntity(type=_MESSAGE_ENTITY, additional_properties=properties)


def reply_activity(reply: Reply) -> Activity:
    """An answer with its citations; the bot's own words (a notice, an error) as a plain message."""
    if reply.kind is not ReplyKind.ANSWER:
        return text_activity(reply.text)
    return answer_activity(reply)


def answer_activity(reply: Reply) -> Activity:
    sources = reply.sources[:MAX_CITATIONS]
    text = (to_teams_markdown(reply.text) or texts.FAILURE) + _sources_block(sources)
    # A model's NO_ANSWER becomes our own sentence (not grounded): the label is for words a model wrote.
    entity = message_entity(sources, ai_generated=reply.mode == "llm" and reply.grounded)
    return Activity(
        type=ActivityTypes.message,
        text=text,
        text_format="markdown",
        entities=[entity] if entity is not None else None,
        # Without an answer id the click could not be matched to the answer: no buttons then.
        channel_data={"feedbackLoop": {"type": "default"}} if reply.answer_id else None,
    )


def text_activity(text: str) -> Activity:
    """A message in the bot's own words, escaped all the same: a notice may quote what it was sent."""
    return Activity(type=ActivityTypes.message, text=to_teams_markdown(text), text_format="markdown")


def typing_activity() -> Activity:
    return Activity(type=ActivityTypes.typing)


def stream_update(text: str, *, sequence: int, stream_id: str, informative: bool) -> Activity:
    """One update of a stream: the whole text so far (already Teams markdown), numbered from 1."""
    info: dict[str, Any] = {
        "streamType": "informative" if informative else "streaming",
        "streamSequence": sequence,
    }
    if stream_id:  # the first update has none yet: its own id becomes the stream's
        info["streamId"] = stream_id
    return Activity(
        type=ActivityTypes.typing,
        text=text,
        text_format="markdown",
        entities=[_OpenEntity(type=_STREAM_ENTITY, additional_properties=info)],
    )


def ending_stream(final: Activity, stream_id: str) -> Activity:
    """The final message as the end of the stream it replaces (no sequence: Teams refuses one there)."""
    end = _OpenEntity(
        type=_STREAM_ENTITY, additional_properties={"streamId": stream_id, "streamType": "final"}
    )
    return Activity(
        type=final.type,
        text=final.text,
        text_format=final.text_format,
        entities=[*(final.entities or []), end],
        channel_data=final.channel_data,
    )


def stream_cut_short(shown: str) -> Activity:
    """What ends a stream at Teams' time limit: the text shown so far, the answer to follow as a message."""
    if not shown:
        return text_activity(STREAM_STILL_WORKING_TEXT)
    entity = message_entity((), ai_generated=True)  # a model wrote it, even half of it
    return Activity(type=ActivityTypes.message, text=shown, text_format="markdown", entities=[entity])
