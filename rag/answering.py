"""From question and passages to a cited answer: prompts, citation mapping, the not-found path."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from rag.markdown import CITATION, CITATION_RUN, citation_numbers, closes_fence, code_spans, fence_opening
from rag.types import Chunk, Hit, Reply, Source, Turn

NO_ANSWER = "NO_ANSWER"
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
# The prompt's data block is <passages>…</passages>: a page (or a question) that writes the tag itself
# could close the block early and have what follows read as instructions. Its "<" becomes a look-alike.
_DELIMITER = re.compile(r"<(\s*/?\s*passages\b)", re.IGNORECASE)


def _inert(text: str) -> str:
    return _DELIMITER.sub(r"‹\1", text)


def _message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages]


def subheading(title: str, section: str) -> str:
    """The section trail without the page's title in front: "" for a passage at the top of the page."""
    if section.startswith(f"{title} > "):
        section = section[len(title) + 3 :]
    return "" if section == title else section


def heading(title: str, section: str) -> str:
    """ "Title › Section", without repeating the title when the section trail starts with it."""
    section = subheading(title, section)
    return f"{title} › {section}" if section else title


def source_of(chunk: Chunk) -> Source:
    return Source(chunk.page_id, chunk.title, chunk.url, version=chunk.version, space=chunk.space)


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
            _inert(
                f"[{n}] {h.chunk.title}"
                + (f" › {h.chunk.section}" if h.chunk.section else "")
                + f"\n{passage_body(h.chunk.text)}"
            )
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
            template.format_messages(
                rules=rules, history=history_msgs, passages=passages, question=_inert(question)
            )
        )


def cite(answer: str, hits: Sequence[Hit]) -> Reply | None:
    """Maps the model's [n] passage citations to page sources, renumbered so [m] is sources[m-1].

    None when the model said the passages do not hold the answer (NO_ANSWER).
    """
    text = answer.strip()
    text, sources = renumber_citations(text, hits)
    if _is_refusal(text, cited=bool(sources)):
        return None
    if not sources:
        # The model answered without citing: show what it was given, so the user can check.
        seen: set[str] = set()
        for hit in hits:
            if hit.chunk.page_id not in seen and len(sources) < 3:
                seen.add(hit.chunk.page_id)
                sources.append(source_of(hit.chunk))
    return Reply(text=text, sources=tuple(sources), grounded=True, mode="llm")


def _is_refusal(text: str, *, cited: bool) -> bool:
    """NO_ANSWER, even dressed up by the model (`**NO_ANSWER**`, "`NO_ANSWER`.", an explanation after it).

    A first line that is NO_ANSWER is a refusal whatever follows. Without any citation, NO_ANSWER opening
    the answer or closing it (after an excuse) is one too; a mere mention inside cited content is not.
    """
    lines = [line for line in (bare_line(raw) for raw in text.splitlines()) if line]
    if not lines:
        return True
    if _NO_ANSWER_LINE.fullmatch(lines[0]):
        return True
    return not cited and bool(_NO_ANSWER_START.match(lines[0]) or _NO_ANSWER_END.search(lines[-1]))


def bare_line(line: str) -> str:
    """A line without markdown escapes and the emphasis, code ticks, quotes and punctuation around it."""
    return line.replace("\\", "").strip(_DECORATION)


def renumber_citations(text: str, hits: Sequence[Hit]) -> tuple[str, list[Source]]:
    sources: list[Source] = []
    number_of_page: dict[str, int] = {}
    code = code_spans(text)

    def page_number(n: int) -> int:
        chunk = hits[n - 1].chunk
        if chunk.page_id not in number_of_page:
            sources.append(source_of(chunk))
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

        for bracket in CITATION.finditer(run.group(0)):
            passages = citation_numbers(bracket.group(1), len(hits))
            if passages is None:
                # Not a citation (a number past the passages, a reversed range): kept as written.
                flush()
                out.append(bracket.group(0))
            else:
                pending.extend(page_number(n) for n in passages)
        flush()
        return "".join(out)

    return CITATION_RUN.sub(render, text), sources


def extractive(hits: Sequence[Hit], language: str, *, intro: dict[str, str], limit: int = 3) -> Reply:
    """The best passages themselves, grouped under their page: each source is numbered once, and a page's
    second passage sits under the same [n] with its own section line."""
    pages: dict[str, list[Hit]] = {}
    for hit in hits[:limit]:
        pages.setdefault(hit.chunk.page_id, []).append(hit)
    lines = [intro.get(language, intro["en"]), ""]
    sources: list[Source] = []
    for n, passages in enumerate(pages.values(), start=1):
        first = passages[0].chunk
        sources.append(source_of(first))
        if len(passages) == 1:
            lines.append(f"[{n}] **{heading(first.title, first.section)}**")
        else:
            lines.append(f"[{n}] **{first.title}**")
        for hit in passages:
            if len(passages) > 1 and (section := subheading(first.title, hit.chunk.section)):
                lines.append(f"_{section}_")
            lines.append(excerpt(passage_body(hit.chunk.text).strip()))
            lines.append("")
    return Reply(text="\n".join(lines).strip(), sources=tuple(sources), grounded=True, mode="extractive")


# A chunk is at most CHUNK_SIZE (1,000 by default) characters, so a passage normally shows whole; only a page
# chunked with a larger size, or a blob of one word longer than a chunk, is cut.
PASSAGE_MAX_CHARS = 1500
_SENTENCE_END = re.compile(r"[.!?…。！？](?=\s)|\n")


def excerpt(body: str, limit: int = PASSAGE_MAX_CHARS) -> str:
    """The passage whole, or cut after its last sentence (or line) that fits, with "…"; a code block cut open is
    closed again, so what follows does not render as code."""
    if len(body) <= limit:
        return body
    head = body[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(head) if m.end() > limit // 3]
    head = head[: ends[-1]] if ends else head.rsplit(" ", 1)[0]
    fence = None
    for line in head.split("\n"):
        if fence is None:
            fence = fence_opening(line)
        elif closes_fence(line, fence):
            fence = None
    if fence is not None:
        return f"{head.rstrip()}\n{fence}\n…"
    return f"{head.rstrip()} …"


def not_found(language: str) -> Reply:
    return Reply(text=NOT_FOUND.get(language, NOT_FOUND["en"]), sources=(), grounded=False, mode="llm")
