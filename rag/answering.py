"""From question and passages to a cited answer: prompts, citation mapping, the not-found path."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from rag.types import Hit, Reply, Source, Turn

NO_ANSWER = "NO_ANSWER"
_CITATION = re.compile(r"\[(\d{1,3})\]")
_FRENCH_WORDS = frozenset(
    [
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "du",
        "de",
        "et",
        "est",
        "sont",
        "pour",
        "comment",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "où",
        "qui",
        "que",
        "quoi",
        "dans",
        "avec",
        "sur",
        "je",
        "nous",
        "vous",
        "mon",
        "ma",
        "mes",
        "notre",
        "votre",
        "faut",
        "faire",
        "peut",
        "puis-je",
        "dois-je",
        "est-ce",
    ]
)
_FRENCH_CHARS = set("éèêàùçôîâœ")

NOT_FOUND = {
    "en": "I couldn't find the answer to this in the wiki. Try rephrasing, or ask the team that owns the topic.",
    "fr": "Je n'ai pas trouvé la réponse dans le wiki. Essayez de reformuler, ou demandez à l'équipe concernée.",
}
EXTRACTIVE_INTRO = {
    "en": "_Extractive answer (no language model configured): the most relevant wiki passages._",
    "fr": "_Réponse extractive (aucun modèle de langage configuré) : les passages du wiki les plus pertinents._",
}
MODEL_DOWN_INTRO = {
    "en": "_The language model is unavailable right now; here are the most relevant wiki passages._",
    "fr": "_Le modèle de langage est indisponible pour le moment ; voici les passages du wiki les plus pertinents._",
}
LANGUAGE_NAMES = {"en": "English", "fr": "French"}


def detect_language(text: str) -> str:
    words = re.findall(r"[\w'-]+", text.lower())
    french = sum(w in _FRENCH_WORDS for w in words) + 2 * sum(ch in _FRENCH_CHARS for ch in text.lower())
    return "fr" if french >= max(2, len(words) // 4) else "en"


def _message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages]


def heading(title: str, section: str) -> str:
    """ "Title › Section", without repeating the title when the section trail starts with it."""
    if section.startswith(f"{title} > "):
        section = section[len(title) + 3 :]
    return title if not section or section == title else f"{title} › {section}"


def passage_body(text: str) -> str:
    """A chunk without its context header (title, breadcrumb, section lines before the first blank line)."""
    head, sep, body = text.partition("\n\n")
    return body if sep else head


@dataclass(frozen=True)
class Prompts:
    system: str
    condense: str

    @classmethod
    def load(cls, system_override: str | None = None) -> Prompts:
        folder = resources.files("rag") / "prompts"
        system = system_override or (folder / "system.txt").read_text(encoding="utf-8")
        return cls(system=system, condense=(folder / "condense.txt").read_text(encoding="utf-8"))

    def condense_messages(self, history: Sequence[Turn], question: str) -> list[dict[str, str]]:
        transcript = "\n".join(f"{t.role}: {t.content}" for t in history)
        template = ChatPromptTemplate.from_messages(
            [
                ("system", "{instructions}"),
                ("human", "Conversation:\n{transcript}\n\nFollow-up: {question}"),
            ]
        )
        return _message_dicts(
            template.format_messages(instructions=self.condense, transcript=transcript, question=question)
        )

    def answer_messages(
        self, history: Sequence[Turn], question: str, hits: Sequence[Hit], language: str
    ) -> list[dict[str, str]]:
        passages = "\n\n".join(
            f"[{n}] {h.chunk.title}"
            + (f" › {h.chunk.section}" if h.chunk.section else "")
            + f"\n{passage_body(h.chunk.text)}"
            for n, h in enumerate(hits, start=1)
        )
        template = ChatPromptTemplate.from_messages(
            [
                ("system", "{rules}"),
                ("placeholder", "{history}"),
                ("human", "Wiki passages:\n<passages>\n{passages}\n</passages>\n\nQuestion: {question}"),
            ]
        )
        rules = self.system.replace(
            "{language}", LANGUAGE_NAMES.get(language, "the language of the question")
        )
        history_msgs = [("human" if t.role == "user" else "ai", t.content) for t in history]
        return _message_dicts(
            template.format_messages(rules=rules, history=history_msgs, passages=passages, question=question)
        )


def cite(answer: str, hits: Sequence[Hit]) -> Reply:
    """Maps the model's [n] passage citations to page sources, renumbered so [m] is sources[m-1]."""
    text = answer.strip()
    if not text or text.startswith(NO_ANSWER) or text.endswith(NO_ANSWER):
        raise LookupError(NO_ANSWER)
    sources: list[Source] = []
    number_of_page: dict[str, int] = {}

    def renumber(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= len(hits):
            return ""
        chunk = hits[n - 1].chunk
        if chunk.page_id not in number_of_page:
            sources.append(Source(chunk.page_id, chunk.title, chunk.url))
            number_of_page[chunk.page_id] = len(sources)
        return f"[{number_of_page[chunk.page_id]}]"

    text = _CITATION.sub(renumber, text)
    # Adjacent identical citations collapse: "[1][1]" from two passages of one page.
    text = re.sub(r"(\[\d+\])(?:\1)+", r"\1", text)
    if not sources:
        # The model answered without citing: show what it was given, so the user can check.
        for hit in hits:
            if hit.chunk.page_id not in number_of_page and len(sources) < 3:
                sources.append(Source(hit.chunk.page_id, hit.chunk.title, hit.chunk.url))
                number_of_page[hit.chunk.page_id] = len(sources)
    return Reply(text=text, sources=tuple(sources), grounded=True, mode="llm")


def extractive(hits: Sequence[Hit], language: str, *, intro: dict[str, str], limit: int = 3) -> Reply:
    lines = [intro.get(language, intro["en"]), ""]
    sources: list[Source] = []
    number_of_page: dict[str, int] = {}
    for hit in hits[:limit]:
        chunk = hit.chunk
        if chunk.page_id not in number_of_page:
            sources.append(Source(chunk.page_id, chunk.title, chunk.url))
            number_of_page[chunk.page_id] = len(sources)
        body = passage_body(chunk.text).strip()
        if len(body) > 600:
            body = body[:600].rsplit(" ", 1)[0] + " …"
        lines.append(f"[{number_of_page[chunk.page_id]}] **{heading(chunk.title, chunk.section)}**")
        lines.append(body)
        lines.append("")
    return Reply(text="\n".join(lines).strip(), sources=tuple(sources), grounded=True, mode="extractive")


def not_found(language: str) -> Reply:
    return Reply(text=NOT_FOUND.get(language, NOT_FOUND["en"]), sources=(), grounded=False, mode="llm")
