"""Commands parsed in one place for every platform, so Slack, Teams and the terminal agree."""

from __future__ import annotations

from enum import Enum

RESET_SLASH_COMMAND = "/wiki-reset"


class Command(Enum):
    RESET = "reset"
    HELP = "help"


_WORDS: dict[str, Command] = {
    "reset": Command.RESET,
    RESET_SLASH_COMMAND: Command.RESET,
    "/reset": Command.RESET,
    "help": Command.HELP,
    "/help": Command.HELP,
    "aide": Command.HELP,
}


def parse_command(text: str) -> Command | None:
    """The command a whole message is, or None when it is a question.

    Only a message that is exactly a command word counts: "how do I reset my VPN token?" is a question.
    """
    word = text.strip().strip(".!").lower()
    return _WORDS.get(word)


HELP_TEXT = (
    "Ask me anything about our Confluence wiki, in English or French; I answer with links to the pages "
    "I used. Follow-up questions keep the context of this conversation. "
    "Say `reset` (or `/wiki-reset` in Slack) to start over."
)
