"""Pages written to cost the bot as much as possible, synced for real: bounded chunks, bounded work, reported.

Each page goes through the real sync (the atlassian client against the loopback Confluence fake) with an
embedder that reads a 256-token window, so chunks are measured in tokens as in production. The figures
of the security review (issue 13) came from such pages: 70,491 chunks for a 60 KB run without spaces,
21,945 for a 20 KB base64 blob, 2,994 for a 3,000-character Chinese paragraph.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from rag.chunking import embedding_text
from rag.types import Chunk, SyncReport
from tests.fakes.embedder import WindowedEmbedder
from tests.support import make_core, settings_for

PAGE_ID = "7001"
WINDOW = 256
_RNG = random.Random(13)
# Every character a token of its own to a WordPiece tokenizer: the densest text there is.
NO_SPACE_60K = "".join(_RNG.choice(";,.(){}=+-/") for _ in range(60_000))
BASE64_20K = base64.b64encode(_RNG.randbytes(15_000)).decode()
assert len(BASE64_20K) == 20_000


def _chinese(n: int) -> str:
    """A paragraph of n characters with a full stop every 40, as written Chinese has."""
    return "".join("。" if i % 40 == 39 else chr(0x4E00 + _RNG.randrange(3000)) for i in range(n))


CJK_3000 = _chinese(3_000)


@pytest.fixture
def embedder() -> WindowedEmbedder:
    return WindowedEmbedder(window=WINDOW)


def _sync(
    fake: ConfluenceFake, tmp_path: Path, embedder: WindowedEmbedder, **settings: int
) -> tuple[Core, SyncReport]:
    core = make_core(settings_for(fake, tmp_path / "data", **settings), embedder=embedder)
    report = core.sync()
    assert report.ok, report.errors
    return core, report


def _chunks_of(core: Core, page_id: str = PAGE_ID) -> list[Chunk]:
    active = core.kb.active()
    assert active is not None
    chunks = [c for c in active.vectors.all_chunks() if c.page_id == page_id]
    return sorted(chunks, key=lambda c: int(c.chunk_id.rsplit(":", 1)[1]))


def _body(chunk: Chunk) -> str:
    return chunk.text.split("\n\n", 1)[1]


@pytest.fixture
def synced(fake: ConfluenceFake, tmp_path: Path, embedder: WindowedEmbedder) -> Iterator[Core]:
    """A wiki with the sample pages and one page holding a 60 KB run, a 20 KB blob and a Chinese paragraph."""
    fake.add_page(
        page_id=PAGE_ID,
        title="Build artefacts",
        body=(
            f"<h1>Minified bundle</h1><p>{NO_SPACE_60K}</p>"
            f"<h1>Signing certificate</h1><p>{BASE64_20K}</p>"
            f"<h1>部署说明</h1><p>{CJK_3000}</p>"
        ),
    )
    core, _ = _sync(fake, tmp_path, embedder)
    yield core
    core.close()


def test_a_60kb_run_without_spaces_is_cut_into_chunks_of_the_usual_size(synced: Core) -> None:
    chunks = [c for c in _chunks_of(synced) if c.section == "Minified bundle"]
    # Cut to the token window it made 60,000 / 250 tokens = 240+ chunks (70,491 with a long header);
    # by characters it makes one per 1,000, as prose does.
    assert 60 <= len(chunks) <= 70
    assert all(900 <= len(c.text) <= 1000 for c in chunks[:-1])
    assert "".join(_body(c) for c in chunks) == NO_SPACE_60K  # nothing lost, nothing repeated


def test_a_20kb_base64_blob_is_cut_into_chunks_of_the_usual_size(synced: Core) -> None:
    chunks = [c for c in _chunks_of(synced) if c.section == "Signing certificate"]
    assert 20 <= len(chunks) <= 25
    assert "".join(_body(c) for c in chunks) == BASE64_20K


def test_a_chinese_paragraph_is_cut_at_its_full_stops_into_chunks_the_model_reads_whole(
    synced: Core, embedder: WindowedEmbedder
) -> None:
    chunks = [c for c in _chunks_of(synced) if c.section == "部署说明"]
    # About 250 characters to a 256-token window, with overlap: 3,000 characters make 12 to 30 chunks.
    assert 12 <= len(chunks) <= 30
    assert all(embedder.count_tokens(embedding_text(c.text)) <= WINDOW for c in chunks)
    # Cut at sentence ends, never inside a sentence: each chunk's text ends with a full stop.
    assert all(_body(c).endswith("。") for c in chunks)


def test_the_hostile_page_adds_about_a_hundred_chunks_in_all(synced: Core) -> None:
    # The review's bound for 60 KB without spaces plus 3,000 Chinese characters is ~150; the blob adds ~21.
    assert len(_chunks_of(synced)) <= 150


LONG_TITLE = _chinese(250).replace("。", "")  # 250 tokens alone: the whole window
# Six headings that fit the tokenizer-free short cut of the length (254 characters) in all.
DEEP_TRAIL = "".join(f"<h{d}>{_chinese(38).replace('。', '')}</h{d}>" for d in range(1, 7))


@pytest.mark.parametrize(
    ("title", "headings"),
    [(LONG_TITLE, ""), ("Runbook", DEEP_TRAIL)],
    ids=["very-long-title", "deep-section-trail"],
)
def test_a_long_header_never_leaves_less_than_half_a_chunk_for_the_text(
    fake: ConfluenceFake, tmp_path: Path, embedder: WindowedEmbedder, title: str, headings: str
) -> None:
    paragraph = _chinese(3_000)
    fake.add_page(page_id=PAGE_ID, title=title, body=f"{headings}<p>{paragraph}</p>")
    core, _ = _sync(fake, tmp_path, embedder)
    try:
        chunks = _chunks_of(core)
        # The header is measured by what it takes of a full chunk and shortened to half of it at most:
        # before, it measured 250 alone and took the whole window, leaving one character per chunk.
        assert len(chunks) <= 60
        for chunk in chunks:
            header, body = chunk.text.split("\n\n", 1)
            assert embedder.count_tokens(header) <= WINDOW // 2 + 2
            assert embedder.count_tokens(body) >= WINDOW // 4, chunk.chunk_id
        assert all(embedder.count_tokens(embedding_text(c.text)) <= WINDOW for c in chunks)
        assert title[:40] in chunks[0].text  # the title is shortened, not dropped
    finally:
        core.close()


def _big_page(sections: int) -> str:
    return "".join(
        f"<h2>Part {n}</h2>"
        + "".join(
            f"<p>Step {p} of part {n}: check the valve and write down marker{n}x{p}.</p>" for p in range(12)
        )
        for n in range(sections)
    )


@pytest.mark.parametrize(
    ("limits", "cut"),
    [
        ({"page_max_chars": 20_000, "page_max_chunks": 1_000}, "body cut at 20,000 of "),
        ({"page_max_chars": 1_000_000, "page_max_chunks": 10}, "chunks cut to the first 10"),
    ],
    ids=["over-PAGE_MAX_CHARS", "over-PAGE_MAX_CHUNKS"],
)
def test_a_page_over_the_limits_is_indexed_up_to_them_logged_and_counted(
    fake: ConfluenceFake,
    tmp_path: Path,
    embedder: WindowedEmbedder,
    caplog: pytest.LogCaptureFixture,
    limits: dict[str, int],
    cut: str,
) -> None:
    body = _big_page(100)  # 83 KB: over both test limits, far under the defaults
    assert len(body) > 80_000
    fake.add_page(page_id=PAGE_ID, title="Valve inventory", body=body)
    with caplog.at_level(logging.WARNING, logger="rag.sync"):
        core, report = _sync(fake, tmp_path, embedder, **limits)
    try:
        # The sample wiki's pages are whole; only this one is cut, and it is still indexed up to the limit.
        assert report.pages_cut == 1 and report.as_dict()["pages_cut"] == 1
        assert report.added == len(fake.page_ids()) - _restricted(core)
        lines = [r.getMessage() for r in caplog.records if "cut:" in r.getMessage()]
        assert len(lines) == 1 and lines[0].startswith(f"page {PAGE_ID} ('Valve inventory') cut: ")
        assert cut in lines[0]
        chunks = _chunks_of(core)
        assert 0 < len(chunks) <= limits["page_max_chunks"]
        text = "\n".join(c.text for c in chunks)
        assert "marker0x0." in text and "marker99x11" not in text
    finally:
        core.close()


def _restricted(core: Core) -> int:
    """Sample pages with read restrictions: listed by Confluence, never indexed."""
    from rag.sync import restricted_ids

    return len(restricted_ids(core.source.list_pages()))


def test_pages_within_the_default_limits_are_never_cut(
    fake: ConfluenceFake, tmp_path: Path, embedder: WindowedEmbedder
) -> None:
    fake.add_page(
        page_id=PAGE_ID, title="Valve inventory", body=_big_page(480)
    )  # 400 KB, the size of the bench wiki's biggest page
    core, report = _sync(fake, tmp_path, embedder)
    try:
        assert report.pages_cut == 0
        assert "marker479x11" in "\n".join(c.text for c in _chunks_of(core))
    finally:
        core.close()
