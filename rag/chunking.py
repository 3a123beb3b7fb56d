"""Pages to chunks: split at sections first, then by size; every chunk says where it comes from.

Each chunk starts with a short context header (page title, section trail) so that a chunk retrieved alone
still names its page and section, for the embedder as well as for the model. `embedding_text` is what the
embedder reads of a chunk or a question: the same words without markdown punctuation.

What one page may cost is bounded (`chunk_bounded`): the body read is capped in characters before it is
parsed, the chunks kept are capped in number, and a run of characters without spaces (a base64 blob, a
minified file) is cut by characters into chunks of its own instead of into token-sized crumbs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.markdown import closes_fence, fence_opening
from rag.storage_format import Section, cut_storage, parse_storage
from rag.types import Chunk, Page

__all__ = ["CHUNK_FORMAT", "ChunkedPage", "PageLimits", "chunk_bounded", "chunk_page", "embedding_text"]

LengthFunction = Callable[[str], int]

# Bump when the text of a chunk changes for the same page (header, rendering, embedding_text): the
# knowledge base then rebuilds once instead of mixing the two formats.
CHUNK_FORMAT: Final = 3
_HEADING_MARK = re.compile(r"^#{1,6} ", re.MULTILINE)
_CELL_NAME = re.compile(r"^([^:;\n]{1,60}): ")
# Oversized prose and table rows: break at sentences, then at cell boundaries, then at words. Chinese and
# Japanese write no spaces: their sentence and clause marks are the only places to break a paragraph.
# Full stop, exclamation and question marks; semicolon; comma and enumeration comma (。！？ ； ，、).
_CJK_SENTENCE, _CJK_CLAUSE = ["\u3002", "\uff01", "\uff1f"], ["\uff1b", "\uff0c", "\u3001"]
_TEXT_SEPARATORS = ["\n", ". ", *_CJK_SENTENCE, "; ", " | ", ", ", *_CJK_CLAUSE, " ", ""]
# Scripts written without spaces between words (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar, Tibetan,
# CJK punctuation and full-width forms): a long run of them is prose, to be cut at its sentence marks.
_NO_SPACE_SCRIPTS = (
    "\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ffff"
)
# A blob: a run of characters with neither spaces nor such script, longer than any key, token or address a
# page quotes (the bench wiki's longest run is 198 characters). Its pieces would measure as many tokens as
# characters (`;` is a token of its own), so cut to the token window it became thousands of crumbs; it
# is cut by characters instead. The look-behind anchors a match at the start of a run: one pass per run.
_BLOB_RUN: Final = 1000
_BLOB = re.compile(rf"(?<![^\s{_NO_SPACE_SCRIPTS}])[^\s{_NO_SPACE_SCRIPTS}]{{{_BLOB_RUN},}}")
_CODE_SEPARATORS = ["\n\n", "\n", " ", ""]


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


@dataclass(frozen=True, slots=True)
class PageLimits:
    """The most one page may cost, whatever its author pasted into it.

    `max_chars` caps the storage-format body read (cut before parsing: the review measured 1.7 GB and 13
    minutes for a 20 MB body); `max_chunks` caps the chunks kept (each one costs an embedding).
    """

    max_chars: int
    max_chunks: int

    def __post_init__(self) -> None:
        if self.max_chars < 1 or self.max_chunks < 1:
            raise ValueError("page limits must be at least 1")


@dataclass(frozen=True, slots=True)
class ChunkedPage:
    """A page's chunks, and what its limits left out (empty when the page is indexed whole)."""

    chunks: list[Chunk]
    cut: tuple[str, ...] = ()


def chunk_page(
    page: Page,
    *,
    chunk_size: int,
    chunk_overlap: int,
    length_function: LengthFunction = len,
) -> list[Chunk]:
    """Chunks of one page, ids `{page_id}:{n}` in page order; each text, header included, fits chunk_size.

    Sections are packed in page order until a chunk is full, so short sections share a chunk (each
    under its own heading line) instead of each making a small one of its own: on 300 pages of Python's
    and git's manuals, 7,650 chunks instead of 10,073. A section too long for one chunk is cut at lines,
    then sentences, with `chunk_overlap` between its pieces. A blob (a run of over 1,000 characters
    without spaces) gets chunks of its own, chunk_size characters each whatever `length_function` says:
    the embedder reads the start of each, the reader and keyword search all of it.
    """
    return _chunks(page, page.body, chunk_size, chunk_overlap, length_function, max_chunks=None)


def chunk_bounded(
    page: Page,
    *,
    limits: PageLimits,
    chunk_size: int,
    chunk_overlap: int,
    length_function: LengthFunction = len,
) -> ChunkedPage:
    """`chunk_page` within `limits`: a page over them is indexed up to them, and `cut` says what was left.

    The body is cut before it is parsed, so a 20 MB page costs what a page at the cap costs.
    """
    body = cut_storage(page.body, limits.max_chars)
    cut: list[str] = []
    if len(page.body) > limits.max_chars:
        cut.append(f"body cut at {limits.max_chars:,} of {len(page.body):,} characters (PAGE_MAX_CHARS)")
    chunks = _chunks(page, body, chunk_size, chunk_overlap, length_function, max_chunks=limits.max_chunks + 1)
    if len(chunks) > limits.max_chunks:
        chunks = chunks[: limits.max_chunks]
        where = f", up to section {chunks[-1].section!r}" if chunks[-1].section else ""
        cut.append(f"chunks cut to the first {limits.max_chunks:,}{where} (PAGE_MAX_CHUNKS)")
    return ChunkedPage(chunks, tuple(cut))


def _chunks(
    page: Page,
    body: str,
    chunk_size: int,
    chunk_overlap: int,
    length_function: LengthFunction,
    *,
    max_chunks: int | None,
) -> list[Chunk]:
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError("chunk_overlap must be at least 0 and smaller than chunk_size")
    sizer = _Sizer(page, chunk_size, chunk_overlap, length_function)
    pieces = sizer.pack(sizer.units(parse_storage(body)), max_chunks)
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
class _Unit:
    """What a chunk is packed from: a line, a whole code fence, or a lead-in with what it introduces.

    A section with no text of its own (a heading straight above a subheading) is one unit with empty
    text, so that its heading is still written where the chunk crosses it.
    """

    trail: tuple[str, ...]
    text: str
    size: int
    # A piece of a blob, already cut to a chunk by characters: it makes a chunk on its own.
    blob: bool = False


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
        # A token count costs a tokenizer pass: each unit, heading line and header is measured once.
        self._sizes: dict[str, int] = {}
        self._headers: dict[tuple[str, ...], str] = {}
        self._costs: dict[str, int] = {}
        self.separator = self.measure("\n")

    def measure(self, text: str) -> int:
        size = self._sizes.get(text)
        if size is None:
            size = self._sizes[text] = self.length(text)
        return size

    def header(self, trail: tuple[str, ...]) -> str:
        header = self._headers.get(trail)
        if header is None:
            header = self._headers[trail] = self._header(trail)
        return header

    def _header(self, trail: tuple[str, ...]) -> str:
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
            if self._header_cost(header) <= limit:
                return header
        # Even the bare title is too long for this chunk size: keep what fits of it.
        lo, hi = 0, len(title)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._header_cost(title[:mid] + "\n\n") <= limit:
                lo = mid
            else:
                hi = mid - 1
        return title[:lo] + "\n\n" if lo else ""

    def _header_cost(self, header: str) -> int:
        """What a header takes of a full chunk, which can be more than it measures alone.

        A token-scaled length counts a short text in characters (it cannot overflow the window) but a
        full chunk in tokens: 250 Chinese characters measure 250 alone and fill the whole 256-token window
        inside a chunk, which left each chunk room for one character of body. Measured repeated to a
        chunk's length, the header shows its cost in a chunk; under `len` both measures are the same.
        """
        if not header:
            return 0
        cost = self._costs.get(header)
        if cost is None:
            copies = max(1, math.ceil(self.chunk_size / len(header)))
            cost = max(self.length(header), math.ceil(self.length(header * copies) / copies))
            self._costs[header] = cost
        return cost

    def units(self, sections: list[Section]) -> list[_Unit]:
        """The page as units in order, each one small enough for a chunk under its own section's header."""
        out: list[_Unit] = []
        for section in sections:
            trail = section.headings
            if not section.text:
                if trail:
                    out.append(_Unit(trail, "", 0))
                continue
            header = self.header(trail)
            size, cost = self.measure(header), self._header_cost(header)
            # A header dense in tokens (Chinese, symbols) costs several times its measure inside a chunk:
            # planned with the measure, the text got slivers. Others differ by a few percent either way
            # and are planned as they always were, so that the chunks of ordinary pages stay the same.
            budget = max(1, self.chunk_size - (cost if cost >= 2 * size else size))
            for parts in _units(section.text):
                if any(_BLOB.search(part) for part in parts):
                    # Characters, not the length function; never less than half a chunk, however long the header.
                    room = max(self.chunk_size // 2, self.chunk_size - len(header))
                    for part in parts:
                        if _BLOB.search(part):
                            out.extend(
                                _Unit(trail, piece, len(piece), blob=True)
                                for piece in _blob_pieces(part, room)
                            )
                        else:
                            out.extend(
                                _Unit(trail, piece, self.measure(piece))
                                for piece in self._glued([part], budget)
                            )
                    continue
                out.extend(_Unit(trail, piece, self.measure(piece)) for piece in self._glued(parts, budget))
        return out

    def _glued(self, parts: list[str], budget: int) -> list[str]:
        """A unit (a lead-in and what it introduces, or one line) as pieces within `budget`.

        A lead-in stays with the first piece of a code block that has to be cut anyway; a block that
        fits whole stays whole, and its lead-in goes on with the text before it.
        """
        joined = "\n".join(parts)
        if self.measure(joined) <= budget:
            return [joined]
        if len(parts) == 2 and self.measure(parts[1]) > budget:
            lead, rest = parts
            room = budget - self.measure(lead) - self.separator
            if room >= budget // 2:
                pieces = self._fit(rest, room, room)
                first = f"{lead}\n{pieces[0]}"
                if self.measure(first) <= budget:
                    return [first, *pieces[1:]]
        return [piece for part in parts for piece in self._fit(part, budget, budget)]

    def _fit(self, unit: str, budget: int, cut: int) -> list[str]:
        """A unit cut into pieces that each measure within `budget` (itself when it fits).

        The splitter adds up the sizes of short pieces, and a short run of dense code (hex, paths) has
        more tokens than characters: a piece that still measures over is cut again, smaller in
        proportion (a tenth at least), rather than left for the final check to chop into fragments.
        """
        if self.measure(unit) <= budget:
            return [unit]
        pieces: list[str] = []
        for piece in self._split_unit(unit, cut):
            size = self.measure(piece)
            if size <= budget or cut <= 1:
                pieces.append(piece)
            else:
                pieces.extend(self._fit(piece, budget, min(cut * 9 // 10, cut * budget // size)))
        return pieces

    def pack(self, units: list[_Unit], max_chunks: int | None = None) -> list[tuple[str, str]]:
        """(section label, chunk text) of units packed greedily in order, every text within chunk_size.

        Sizes are added up to plan a chunk (a token count is nearly additive across a line break) and the
        planned text is measured once; when the sum was short of the truth, units go back to the next
        chunk. Consecutive chunks of one section overlap by up to `chunk_overlap` of whole units. A blob
        piece is a chunk of its own, without overlap. Packing stops once `max_chunks` are made.
        """
        out: list[tuple[str, str]] = []
        carried: list[_Unit] = []
        i = 0
        while i < len(units) and (max_chunks is None or len(out) < max_chunks):
            if units[i].blob:
                label, header, body = self.render([units[i]])
                out.append((label, header + body))
                carried = []
                i += 1
                continue
            if carried and _Draft(self, [*carried, units[i]]).size > self.chunk_size:
                carried = []
            draft = _Draft(self, [*carried, units[i]])
            j = i + 1
            while j < len(units) and not units[j].blob and draft.size_with(units[j]) <= self.chunk_size:
                draft.add(units[j])
                j += 1
            new = j - i
            while True:
                label, header, body = self.render(draft.units)
                text = header + body if body else header.rstrip("\n")
                measured = self.length(text)
                if measured <= self.chunk_size or new == 1:
                    break
                new = self._fewer(draft.units, len(carried), new, measured)
                draft = _Draft(self, draft.units[: len(carried) + new])
            if measured > self.chunk_size and carried:
                carried = []  # the overlap leaves no room for the next unit: start it afresh
                continue
            if any(u.text for u in draft.units[len(carried) :]):  # a heading alone is no chunk
                if measured <= self.chunk_size:
                    out.append((label, text))
                else:
                    out.extend((label, piece) for piece in self.bounded(header, body))
            i += new
            carried = self._overlap(draft.units, units[i] if i < len(units) else None)
        return out

    def _fewer(self, units: list[_Unit], carried: int, new: int, measured: int) -> int:
        """How many new units to try after a measured text came out over the size: in proportion."""
        target = _Draft(self, units[: carried + new]).size * self.chunk_size / measured
        while new > 1:
            new -= 1
            if _Draft(self, units[: carried + new]).size <= target:
                break
        return new

    def _overlap(self, units: list[_Unit], following: _Unit | None) -> list[_Unit]:
        """The last units of a chunk that the next one repeats: only inside a section that continues."""
        if (
            following is None
            or following.blob
            or not self.chunk_overlap
            or units[-1].trail != following.trail
        ):
            return []
        budget = self.chunk_size - self.measure(self.header(following.trail))
        limit = min(self.chunk_overlap, budget // 2)
        total, n = 0, 0
        for unit in reversed(units[1:]):  # never the whole chunk again
            if unit.trail != following.trail or not unit.text:
                break
            total += unit.size + (self.separator if n else 0)
            if total > limit:
                break
            n += 1
        return units[len(units) - n :] if n else []

    def render(self, units: list[_Unit]) -> tuple[str, str, str]:
        """Label, header and body of a chunk; a section entered inside the chunk gets its heading line.

        The header names what all units share (a trail that holds for the whole chunk); the label, which
        a citation shows, falls back to the first unit's section when they share nothing.
        """
        common = _common_prefix([u.trail for u in units])
        lines: list[str] = []
        previous = common
        for unit in units:
            lines.extend(_heading_lines(previous, unit.trail, len(common)))
            previous = unit.trail
            if unit.text:
                lines.append(unit.text)
        label = " > ".join(common or units[0].trail)
        return label, self.header(common), "\n".join(lines)

    def _split_unit(self, unit: str, budget: int) -> list[str]:
        lines = unit.split("\n")
        opening = fence_opening(lines[0])
        if opening and len(lines) > 2 and closes_fence(lines[-1], opening):
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
            room = self.chunk_size - self.length(header)
            # Subtract a small excess; shrink in proportion to a large one (dense code), not to nothing.
            budget = max(1, room - (size - self.chunk_size), room * self.chunk_size // size)
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


class _Draft:
    """The planned size of a chunk's units (header, heading lines, texts), kept up as units are added."""

    def __init__(self, sizer: _Sizer, units: list[_Unit]) -> None:
        self._sizer = sizer
        self._plan(units)

    def _plan(self, units: list[_Unit]) -> None:
        self.units = units
        self.common = _common_prefix([u.trail for u in units])
        self._header = self._sizer.measure(self._sizer.header(self.common))
        self._body, self._lines = 0, 0
        previous = self.common
        for unit in units:
            body, lines = self._cost(previous, unit, self.common)
            self._body += body
            self._lines += lines
            previous = unit.trail

    @property
    def size(self) -> int:
        return self._header + self._body + self._sizer.separator * max(0, self._lines - 1)

    def size_with(self, unit: _Unit) -> int:
        if unit.trail[: len(self.common)] != self.common:  # the shared trail shrinks: plan afresh
            return _Draft(self._sizer, [*self.units, unit]).size
        body, lines = self._cost(self.units[-1].trail, unit, self.common)
        return self._header + self._body + body + self._sizer.separator * (self._lines + lines - 1)

    def add(self, unit: _Unit) -> None:
        if unit.trail[: len(self.common)] != self.common:
            self._plan([*self.units, unit])
            return
        body, lines = self._cost(self.units[-1].trail, unit, self.common)
        self.units.append(unit)
        self._body += body
        self._lines += lines

    def _cost(self, previous: tuple[str, ...], unit: _Unit, common: tuple[str, ...]) -> tuple[int, int]:
        headings = _heading_lines(previous, unit.trail, len(common))
        body = sum(self._sizer.measure(h) for h in headings) + unit.size
        return body, len(headings) + (1 if unit.text else 0)


def _heading_lines(previous: tuple[str, ...], trail: tuple[str, ...], start: int) -> list[str]:
    """Markdown heading lines for the levels of `trail` (from depth `start`) not already open."""
    return [
        "#" * min(depth + 1, 6) + " " + trail[depth]
        for depth in range(start, len(trail))
        if previous[: depth + 1] != trail[: depth + 1]
    ]


def _blob_pieces(text: str, room: int) -> list[str]:
    """A line or code block holding a blob, cut by characters into pieces of `room`; code keeps its fence."""
    lines = text.split("\n")
    opening = fence_opening(lines[0])
    if opening and len(lines) > 2 and closes_fence(lines[-1], opening):
        width = room - len(lines[0]) - len(lines[-1]) - 2
        if width >= room // 2:
            inner = "\n".join(lines[1:-1])
            return [f"{lines[0]}\n{piece}\n{lines[-1]}" for piece in _character_cut(inner, width)]
    return _character_cut(text, room)


def _character_cut(text: str, width: int) -> list[str]:
    """Pieces of at most `width` characters, each cut at the last space of its second half if it has one.

    Words around a blob stay whole; the blob itself is cut where the width ends.
    """
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = start + width
        if end < len(text):
            space = max(text.rfind(" ", start + width // 2, end), text.rfind("\n", start + width // 2, end))
            if space > start:
                end = space
        piece = text[start:end].strip()
        if piece:
            pieces.append(piece)
        start = end
    return pieces


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
        fence = fence_opening(lines[i])
        if fence:
            end = next((j for j in range(i + 1, len(lines)) if closes_fence(lines[j], fence)), None)
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
    if fence_opening(following.split("\n", 1)[0]):
        return not line.endswith((".", "!", "?", ";"))
    return len(line) <= 60 and not line.endswith((".", "!", "?", ";", ",", ")", "`"))
