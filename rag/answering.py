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
# A citation names passages 1..999: one "[2]", a list "[1, 3]" or a range "[1-3]" (any dash).
_NUMBER = r"[1-9]\d{0,2}"
_ITEM = rf"{_NUMBER}(?:\s*[-–—]\s*{_NUMBER})?"
# Not a markdown link "[1](url)".
_BRACKET_SOURCE = rf"\[\s*({_ITEM}(?:\s*,\s*{_ITEM})*)\s*\](?!\()"
_BRACKET = re.compile(_BRACKET_SOURCE)
# Adjacent brackets are one run, rendered together ("[1][1]" → "[1]"). A run glued to an identifier or to a
# closing bracket or parenthesis is indexing (`args[1]`, `x[0][1]`, `f()[1]`); "word.[1]" is a citation.
_CITATION_RUN = re.compile(rf"(?<![\w\])]){_BRACKET_SOURCE}(?:[ \t]*{_BRACKET_SOURCE})*")
_RANGE_DASH = re.compile(r"[–—]")
_FENCE_OPEN = re.compile(r"[ \t]*(`{3,}|~{3,})")
# A code span stays within its paragraph: a stray tick must not swallow the next one's citations.
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.DOTALL)
_DECORATION = " \t*_~`\"'“”‘’«»„.,;:!?…()[]{}<>#|-"
_NO_ANSWER_LINE = re.compile(NO_ANSWER, re.IGNORECASE)
_NO_ANSWER_START = re.compile(rf"{NO_ANSWER}\b", re.IGNORECASE)
_NO_ANSWER_END = re.compile(rf"\b{NO_ANSWER}$", re.IGNORECASE)
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


def _message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages]


def heading(title: str, section: str) -> str:
    """ "Title › Section", without repeating the title when the section trail starts with it."""
    if section.startswith(f"{title} > "):
        section = section[len(title) + 3 :]
    return title if not section or section == title else f"{title} › {section}"


def passage_body(text: str) -> str:
    """A chunk without its context header (title and section lines before the first blank line)."""
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


def cite(answer: str, hits: Sequence[Hit]) -> Reply | None:
    """Maps the model's [n] passage citations to page sources, renumbered so [m] is sources[m-1].

    None when the model said the passages do not hold the answer (NO_ANSWER).
    """
    text = answer.strip()
    text, sources = _renumber_citations(text, hits)
    if _is_refusal(text, cited=bool(sources)):
        return None
    if not sources:
        # The model answered without citing: show what it was given, so the user can check.
        seen: set[str] = set()
        for hit in hits:
            if hit.chunk.page_id not in seen and len(sources) < 3:
                seen.add(hit.chunk.page_id)
                sources.append(Source(hit.chunk.page_id, hit.chunk.title, hit.chunk.url))
    return Reply(text=text, sources=tuple(sources), grounded=True, mode="llm")


def _is_refusal(text: str, *, cited: bool) -> bool:
    """NO_ANSWER, even dressed up by the model (`**NO_ANSWER**`, "`NO_ANSWER`.", an explanation after it).

    A first line that is NO_ANSWER is a refusal whatever follows. Without any citation, NO_ANSWER opening
    the answer or closing it (after an excuse) is one too; a mere mention inside cited content is not.
    """
    lines = [line for line in (_bare(raw) for raw in text.splitlines()) if line]
    if not lines:
        return True
    if _NO_ANSWER_LINE.fullmatch(lines[0]):
        return True
    return not cited and bool(_NO_ANSWER_START.match(lines[0]) or _NO_ANSWER_END.search(lines[-1]))


def _bare(line: str) -> str:
    """A line without markdown escapes and the emphasis, code ticks, quotes and punctuation around it."""
    return line.replace("\\", "").strip(_DECORATION)


def _renumber_citations(text: str, hits: Sequence[Hit]) -> tuple[str, list[Source]]:
    sources: list[Source] = []
    number_of_page: dict[str, int] = {}
    code = _code_spans(text)

    def page_number(n: int) -> int:
        chunk = hits[n - 1].chunk
        if chunk.page_id not in number_of_page:
            sources.append(Source(chunk.page_id, chunk.title, chunk.url))
            number_of_page[chunk.page_id] = len(sources)
        return number_of_page[chunk.page_id]

    def render(run: re.Match[str]) -> str:
        if any(start <= run.start() < end for start, end in code):
            return run.group(0)
        out: list[str] = []
        pending: list[int] = []  # page numbers of the brackets since the last non-citation one

        def flush() -> None:
            out.extend(f"[{m}]" for m in dict.fromkeys(pending))
            pending.clear()

        for bracket in _BRACKET.finditer(run.group(0)):
            passages = _passage_numbers(bracket.group(1), len(hits))
            if passages is None:
                # Not a citation (a number past the passages, a reversed range): kept as written.
                flush()
                out.append(bracket.group(0))
            else:
                pending.extend(page_number(n) for n in passages)
        flush()
        return "".join(out)

    return _CITATION_RUN.sub(render, text), sources


def _passage_numbers(group: str, count: int) -> list[int] | None:
    """ "1, 3" or "2-4" → passage numbers; None unless every one of them is a passage (1..count)."""
    numbers: list[int] = []
    for item in group.split(","):
        low, _, high = (part.strip() for part in _RANGE_DASH.sub("-", item).partition("-"))
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= count:
            return None
        numbers.extend(range(first, last + 1))
    return numbers


def _code_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) offsets of fenced code blocks and inline code spans, where [n] is code, not a citation."""
    spans: list[tuple[int, int]] = []
    prose_start = 0
    fence: str | None = None
    fence_start = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if fence is None:
            opening = _FENCE_OPEN.match(line)
            if opening and not (opening.group(1)[0] == "`" and "`" in line[opening.end() :]):
                spans.extend(_inline_code(text, prose_start, offset))
                fence, fence_start = opening.group(1), offset
        elif stripped.startswith(fence) and not stripped.strip(fence[0]):
            spans.append((fence_start, offset + len(line)))
            fence, prose_start = None, offset + len(line)
        offset += len(line)
    if fence is not None:  # an unclosed fence runs to the end, as markdown renders it
        spans.append((fence_start, len(text)))
    else:
        spans.extend(_inline_code(text, prose_start, len(text)))
    return spans


def _inline_code(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _INLINE_CODE.finditer(text, start, end)]


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
