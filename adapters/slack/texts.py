"""What the bot says in Slack only; everything said on every channel is in rag.texts."""

from __future__ import annotations

WORKING = ":hourglass_flowing_sand: Looking through the wiki…"
# Under an answer shown while it is still being written (a posted draft, updated as it grows).
WRITING = ":hourglass_flowing_sand: _Still writing…_"
SLACK_REFUSED = (
    "Sorry, Slack refused my answer, so I could not post it. Please try again or rephrase the question."
)

# The loading status of a thread (assistant.threads.setStatus): Slack shows "WikiBot <status>" and rotates
# the loading messages under it.
STATUS = "is looking through the wiki…"
LOADING_MESSAGES = ("Looking through the wiki…", "Reading the pages that match…", "Writing the answer…")

FEEDBACK_UP = "👍"
FEEDBACK_DOWN = "👎"
FEEDBACK_UP_LABEL = "This answer helped"
FEEDBACK_DOWN_LABEL = "This answer did not help"
FEEDBACK_THANKS = "Thanks for the feedback: it helps us see which pages work and which need care."
FEEDBACK_LOST = (
    "Thanks, but I could not record that rating: the answer is too old, or feedback is switched off."
)

SUGGESTIONS_TITLE = "Popular in the wiki"
