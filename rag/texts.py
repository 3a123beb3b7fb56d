"""What the bot says in its own words, on every channel: short, human, never a stack trace.

Adapters add only what is about their platform (a "working" placeholder, a welcome).
"""

from __future__ import annotations

from rag.types import Suggestion

HELP = (
    "Ask me anything about our Confluence wiki, in English or French; I answer with links to the pages "
    "I used. Follow-up questions keep the context of this conversation. Say `reset` to start over."
)
FILE_ONLY = "I can only read text for now, not attached files: please type your question as a message."
TIMEOUT = "Sorry, finding the answer took too long. Please try again in a minute."
FAILURE = "Sorry, something went wrong on my side while answering. Please try again in a minute."
EMPTY_INDEX = "The wiki index is empty for now: an administrator needs to run `wikibot ingest` first."


def suggestion(title: str) -> Suggestion:
    """A page title offered as a question: shown as plain text by every channel (it is the wiki's words)."""
    title = " ".join(title.split())
    short = title if len(title) <= 60 else title[:59].rstrip() + "…"
    return Suggestion(title=short, message=f"What does the wiki say about {title}?")


def too_long(length: int, limit: int) -> str:
    return f"Your question is too long ({length} characters; the limit is {limit}). Please shorten it."


RESET_SESSION = "Done: I forgot our conversation. Your next question starts fresh."
RESET_THREAD = "Done: I forgot this thread's conversation. Your next question here starts fresh."
RESET_FAILED = "Sorry, I could not reset the conversation just now. Please try again in a minute."
RESET_SLOW = (
    "Resetting is taking longer than usual; if your next answer still remembers the past, run it again."
)
RESET_NO_PLACE = "I could not tell which conversation to reset."
RESET_PRIVATE_DONE = (
    "Done: I forgot our direct-message conversation, threads included. Your next question starts fresh."
)
RESET_PRIVATE_NOTHING = "Nothing to reset: we have no conversation here yet."
RESET_PLACE_NOTHING = (
    "Nothing to reset: you have no thread with me in this channel since I last restarted. "
    "To reset one thread, write `reset` to me inside it."
)


def reset_place_done(count: int) -> str:
    threads = "thread" if count == 1 else "threads"
    return (
        f"Done: I forgot the {count} {threads} you had with me in this channel. "
        "Other people's threads are untouched."
    )
