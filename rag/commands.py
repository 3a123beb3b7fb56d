"""Commands parsed in one place for every channel, so that every channel agrees on them."""

from __future__ import annotations

from enum import Enum


class Command(Enum):
    RESET = "reset"
    HELP = "help"


_WORDS: dict[str, Command] = {
    "reset": Command.RESET,
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
