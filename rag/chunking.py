"""Pages to chunks: split at sections first, then by size; every chunk says where it comes from.

Each chunk starts with a short context header (page title, section trail) so that a chunk retrieved alone
still names its page and section, for the embedder as well as for the model. `embedding_text` is what the
embedder reads of a chunk or a question: the same words without markdown punctuation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.storage_format import Section, parse_storage
from rag.types import Chunk, Page

__all__ = ["CHUNK_FORMAT", "chunk_page", "embedding_text"]

LengthFunction = Callable[[str], int]

# Bump when the text of a chunk changes for the same page (header, rendering, embedding_text): the
# knowledge base then rebuilds once instead of mixing the two formats.
CHUNK_FORMAT: Final = 2
_FENCE_OPEN = re.compile(r"^(`{3,})[^`]*$")
_HEADING_MARK = re.compile(r"^#{1,6} ", re.MULTILINE)
_CELL_NAME = re.compile(r"^([^:;\n]{1,60}): ")
# Oversized prose and table rows: break at sentences, then at cell boundaries, then at words.
_TEXT_SEPARATORS = ["\n", ". ", "; ", " | ", ", ", " ", ""]
_CODE_SEPARATORS = ["\n\n", "\n", " ", ""]
# A section below this share of chunk_size is "tiny": it is merged with its neighbours when they fit.
_TINY_SHARE = 3


def embedding_text(text: str) -> str:
    """A chunk (or question) as the embedder reads it: the same words, less repetition and punctuation.

    The model and the reader need the fences and every table row's column names; the embedder spends a
    token on every backtick and `#` (3 % of the bench wiki's tokens) and reads a table like a markdown
    table, column names once: a row rendered `Name: v; Name: v` (rag.storage_format) whose names repeat
    the row above keeps only its values (4 % more). Code, language names and heading words stay.
    """
    lines: list[str] = []
    previous: list[str] | None = None
    for line in _HEADING_MARK.sub("", text.replace("`", "")).split("\n"):
        cells = line.split("; ")
        names = _row_names(cells)
        if names is not None and names == previous:
            line = "; ".join(cell[len(name) + 2 :] for cell, name in zip(cells, names, strict=True))
        lines.append(line)
        previous = names
    return "\n".join(lines)


def _row_names(cells: list[str]) -> list[str] | None:
    """The column names of a rendered table row, or None for any other line."""
    if len(cells) < 2:
        return None
    names = []
    for cell in cells:
        match = _CELL_NAME.match(cell)
        if match is None:
            return None
        names.append(match.group(1))
    return names


def chunk_page(
    page: Page,
    *,
    chunk_size: int,
    chunk_overlap: int,
    length_function: LengthFunction = len,
) -> list[Chunk]:
    """Chunks of one page, ids `{page_id}:{n}` in page order; each text, header included, fits chunk_size."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError("chunk_overlap must be at least 0 and smaller than chunk_size")
    sizer = _Sizer(page, chunk_size, chunk_overlap, length_function)
    pieces: list[tuple[str, str]] = []  # (section label, full chunk text)
    for group in _groups(parse_storage(page.body), sizer):
        header = sizer.header(group.trail)
        label = " > ".join(group.trail)
        for body in sizer.split(group.body, chunk_size - length_function(header)):
            pieces.extend((label, text) for text in sizer.bounded(header, body))
    if not pieces:
        title_only = sizer.header(()).strip("\n")
        if _clean(page.title) and title_only:
            pieces.append(("", title_only))
    return [
        Chunk(
            chunk_id=f"{page.page_id}:{n}",
            page_id=page.page_id,
            space=page.space,
            title=page.title,
            url=page.url,
            version=page.version,
            last_modified=page.last_modified,
            section=label,
            text=text,
        )
        for n, (label, text) in enumerate(pieces)
    ]


@dataclass(frozen=True, slots=True)
class _Group:
    """Adjacent sections chunked together; a lone section keeps its full trail."""

    trail: tuple[str, ...]
    body: str


def _groups(sections: list[Section], sizer: _Sizer) -> list[_Group]:
    """Merge tiny adjacent sections under the same parent so short headings don't make confetti."""
    groups: list[list[Section]] = []
    for section in sections:
        if groups and _mergeable(groups[-1], section, sizer):
            groups[-1].append(section)
        else:
            groups.append([section])
    return [_render_group(g) for g in groups]


def _mergeable(group: list[Section], section: Section, sizer: _Sizer) -> bool:
    parent = group[0].headings[:-1]
    if section.headings[: len(parent)] != parent:
        return False
    tiny = sizer.chunk_size // _TINY_SHARE
    current = _render_group(group)
    if sizer.length(current.body) > tiny and sizer.length(section.text) > tiny:
        return False
    merged = _render_group([*group, section])
    return sizer.length(sizer.header(merged.trail) + merged.body) <= sizer.chunk_size


def _render_group(group: list[Section]) -> _Group:
    if len(group) == 1:
        return _Group(group[0].headings, group[0].text)
    common = _common_prefix([s.headings for s in group])
    lines: list[str] = []
    previous: tuple[str, ...] = common
    for section in group:
        for depth in range(len(common), len(section.headings)):
            if previous[: depth + 1] != section.headings[: depth + 1]:
                lines.append("#" * min(depth + 1, 6) + " " + section.headings[depth])
        previous = section.headings
        if section.text:
            lines.append(section.text)
    return _Group(common, "\n".join(lines))


def _common_prefix(trails: list[tuple[str, ...]]) -> tuple[str, ...]:
    prefix = trails[0]
    for trail in trails[1:]:
        n = 0
        while n < min(len(prefix), len(trail)) and prefix[n] == trail[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _clean(text: str) -> str:
    return " ".join(text.split())


class _Sizer:
    """Everything measured with the caller's length function (characters or tokens)."""

    def __init__(self, page: Page, chunk_size: int, chunk_overlap: int, length: LengthFunction) -> None:
        self.page = page
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.length = length

    def header(self, trail: tuple[str, ...]) -> str:
        """`title`, `section trail`, blank line; shortened to half a chunk at most.

        Every header token is embedded once per chunk, so the header says only what tells chunks apart:
        the title (unique in its Confluence space) once, and the section trail without a first heading
        that merely repeats (the start of) the title. The page's ancestors are left out: the space home
        and the levels above are shared by whole subtrees; on the bench wiki they were an eighth of all
        embedded tokens, for no recall (bench/query.py: recall@5 equal, MRR within noise).
        """
        title = _clean(self.page.title)
        section = [_clean(h) for h in trail if _clean(h)]
        if section and title.casefold().startswith(section[0].casefold()):
            section = section[1:]
        candidates = [
            [title, " > ".join(section)],
            [title, section[-1] if section else ""],
            [title, ""],
        ]
        limit = self.chunk_size // 2
        for lines in candidates:
            header = "\n".join(line for line in lines if line)
            header = header + "\n\n" if header else ""
            if self.length(header) <= limit:
                return header
        # Even the bare title is too long for this chunk size: keep what fits of it.
        lo, hi = 0, len(title)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.length(title[:mid] + "\n\n") <= limit:
                lo = mid
            else:
                hi = mid - 1
        return title[:lo] + "\n\n" if lo else ""

    def split(self, body: str, budget: int) -> list[str]:
        """A section body cut to `budget`, whole lines and whole code fences kept together."""
        budget = max(1, budget)
        if not body:
            return [""]
        if self.length(body) <= budget:
            return [body]
        units: list[str] = []
        for parts in _units(body):
            joined = "\n".join(parts)
            if self.length(joined) <= budget:
                units.append(joined)
                continue
            for part in parts:
                units.extend(self._split_unit(part, budget) if self.length(part) > budget else [part])
        return self._pack(units, budget)

    def _pack(self, units: list[str], budget: int) -> list[str]:
        """Greedy packing with overlap, the way langchain merges splits.

        We pack ourselves rather than hand the whole text to the splitter: its greedy merge would cut a code
        fence at a blank line inside it even when the fence fits whole in the next chunk.
        """
        separator = self.length("\n")
        overlap = min(self.chunk_overlap, budget // 2)
        chunks: list[str] = []
        current: list[tuple[str, int]] = []
        total = 0
        for unit in units:
            size = self.length(unit)
            if current and total + separator + size > budget:
                chunks.append("\n".join(u for u, _ in current))
                while current and (total > overlap or total + separator + size > budget):
                    total -= current[0][1] + (separator if len(current) > 1 else 0)
                    current.pop(0)
            total += size + (separator if current else 0)
            current.append((unit, size))
        if current:
            chunks.append("\n".join(u for u, _ in current))
        return chunks

    def _split_unit(self, unit: str, budget: int) -> list[str]:
        lines = unit.split("\n")
        opening = _FENCE_OPEN.match(lines[0])
        if opening and len(lines) > 2 and lines[-1] == opening.group(1):
            fence_cost = self.length(lines[0] + "\n" + "\n" + lines[-1])
            inner_budget = budget - fence_cost
            if inner_budget >= max(8, budget // 4):
                code = "\n".join(lines[1:-1])
                parts = self._splitter(inner_budget, _CODE_SEPARATORS, keep_whitespace=True).split_text(code)
                pieces = [p.strip("\n") for p in parts]
                return [f"{lines[0]}\n{p}\n{lines[-1]}" for p in pieces if p.strip()]
        parts = self._splitter(budget, _TEXT_SEPARATORS, keep_whitespace=False).split_text(unit)
        return [p for p in parts if p]

    def _splitter(
        self, budget: int, separators: list[str], *, keep_whitespace: bool
    ) -> RecursiveCharacterTextSplitter:
        return RecursiveCharacterTextSplitter(
            chunk_size=budget,
            chunk_overlap=min(self.chunk_overlap, budget // 2),
            length_function=self.length,
            separators=separators,
            keep_separator="start" if keep_whitespace else "end",
            strip_whitespace=not keep_whitespace,
        )

    def bounded(self, header: str, body: str) -> list[str]:
        """header + body, cut further when a token count is not additive across the join."""
        out: list[str] = []
        pending = [body]
        while pending:
            piece = pending.pop(0)
            text = (header + piece) if piece else header.rstrip("\n")
            if not text:
                continue
            size = self.length(text)
            if size <= self.chunk_size:
                out.append(text)
                continue
            budget = max(1, self.chunk_size - self.length(header) - (size - self.chunk_size))
            parts = [
                p
                for p in RecursiveCharacterTextSplitter(
                    chunk_size=budget,
                    chunk_overlap=0,
                    length_function=self.length,
                    separators=["\n", " ", ""],
                    strip_whitespace=False,
                ).split_text(piece)
                if p
            ]
            if len(parts) <= 1:
                parts = _halves(piece)
            if len(parts) <= 1:  # a single character still too long: the header has to give way
                out.append(piece)
                continue
            pending[:0] = parts
        return out


def _halves(text: str) -> list[str]:
    if len(text) < 2:
        return [text]
    middle = len(text) // 2
    return [text[:middle], text[middle:]]


def _units(body: str) -> list[list[str]]:
    """Lines and whole code fences, a lead-in line glued to what it introduces.

    A chunk that ends on "Take a configuration backup:" or on an admonition's title, with the command or
    the text in the next chunk, answers nothing; so such a line travels with the unit after it.
    """
    units: list[str] = []
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if opening:
            fence = opening.group(1)
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == fence), None)
            if end is not None:
                units.append("\n".join(lines[i : end + 1]))
                i = end + 1
                continue
        units.append(lines[i])
        i += 1
    glued: list[list[str]] = []
    i = 0
    while i < len(units):
        if i + 1 < len(units) and _is_lead_in(units[i], units[i + 1]):
            glued.append([units[i], units[i + 1]])
            i += 2
        else:
            glued.append([units[i]])
            i += 1
    return glued


_LIST_OR_ROW = re.compile(r"^\s*(?:[-*] |\d+\. )|; | \| ")


def _is_lead_in(line: str, following: str) -> bool:
    """A short line that introduces the next unit: `...:`, a code title, an admonition's title."""
    line = line.strip()
    if not line or "\n" in line or len(line) > 100:
        return False
    if line.endswith(":"):
        return True
    if _LIST_OR_ROW.search(line):
        return False
    if _FENCE_OPEN.match(following.split("\n", 1)[0]):
        return not line.endswith((".", "!", "?", ";"))
    return len(line) <= 60 and not line.endswith((".", "!", "?", ";", ",", ")", "`"))
