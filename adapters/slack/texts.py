"""What the bot says in Slack only; everything said on every channel is in rag.texts."""

from __future__ import annotations

WORKING = ":hourglass_flowing_sand: Looking through the wiki…"
SLACK_REFUSED = (
    "Sorry, Slack refused my answer, so I could not post it. Please try again or rephrase the question."
)
