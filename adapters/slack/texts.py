"""What the bot says on its own in Slack: short, human, never a stack trace."""

from __future__ import annotations

WORKING = ":hourglass_flowing_sand: Looking through the wiki…"
FILE_ONLY = "I can only read text for now, not attached files: please type your question as a message."
TIMEOUT = "Sorry, finding the answer took too long. Please try again in a minute."
FAILURE = "Sorry, something went wrong on my side while answering. Please try again in a minute."
SLACK_REFUSED = (
    "Sorry, Slack refused my answer, so I could not post it. Please try again or rephrase the question."
)

RESET_THREAD = "Done: I forgot this thread's conversation. Your next question here starts fresh."
RESET_DM = "Done: I forgot our conversation. Your next question starts fresh."
RESET_FAILED = "Sorry, I could not reset the conversation just now. Please try again in a minute."
RESET_SLOW = (
    "Resetting is taking longer than usual; if your next answer still remembers the past, run it again."
)
RESET_BAD_PAYLOAD = "I could not tell which conversation to reset."

RESET_DM_DONE = (
    "Done: I forgot our direct-message conversation, threads included. Your next question starts fresh."
)
RESET_DM_NOTHING = "Nothing to reset: we have no conversation here yet."


def reset_channel_done(count: int) -> str:
    threads = "thread" if count == 1 else "threads"
    return (
        f"Done: I forgot the {count} {threads} you had with me in this channel. "
        "Other people's threads are untouched."
    )


def reset_channel_nothing(bot_mention: str) -> str:
    return (
        "Nothing to reset: you have no thread with me in this channel since I last restarted. "
        f"To reset one thread, write `{bot_mention} reset` inside it."
    )
