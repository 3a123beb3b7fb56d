"""Does a message continue the conversation's topic, or start a new one?

Without a language model to rewrite follow-ups, retrieval needs the previous question's topic only when
the message leans on it. An opening connective ("and on Linux?", "et pour la branche distante ?") or a
message too short to name a topic of its own surely does. A pronoun ("can it rotate the file daily?")
may: "it" and "that" are as common in complete questions ("is it safe to ...", "a function that ..."),
so such a message is searched both alone and in context. A complete question ("How do I connect to the
VPN?") is searched alone, or the previous topic would crowd it out. Measured on bench/quality_set: of 22
follow-ups, 13 continue surely, 8 maybe, 1 is missed; of 244 complete questions, none continues surely and
79 maybe (searched in context too, where the question alone still ranks its own page).
"""

from __future__ import annotations

import enum
import re

from rag.lexical import tokenize

# Openings that only make sense after something was said.
_CONNECTIVE = re.compile(
    r"^\s*(?:ok(?:ay)?|so|and|also|then|but|or|what about|how about|what if|same|"
    r"et|aussi|alors|mais|ou bien|sinon|pareil|et si|même)\b[\s,;:.!?-]*",
    re.IGNORECASE,
)
# Words that point back to something named earlier.
_ANAPHORA = re.compile(
    r"\b(?:it|its|it's|this|that|these|those|them|they|their|the same|"
    r"ça|cela|ceci|celui|celle|celles|ceux|celui-ci|celle-ci|dessus|dedans|en faire|la même|le même)\b",
    re.IGNORECASE,
)
# A question naming fewer content words than this has no topic of its own.
_MIN_OWN_TERMS = 2


class TopicLink(enum.Enum):
    NEW = "new"
    MAYBE = "maybe"
    CONTINUES = "continues"


def topic_link(message: str) -> TopicLink:
    if _CONNECTIVE.match(message) or len(set(tokenize(message))) < _MIN_OWN_TERMS:
        return TopicLink.CONTINUES
    if _ANAPHORA.search(message):
        return TopicLink.MAYBE
    return TopicLink.NEW
