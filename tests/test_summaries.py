"""Ingest and demo summaries account for every page of the wiki: indexed, or left out and why (issue 15)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo.confluence_fake import ConfluenceFake
from bot.demo.run import run_demo
from bot.status import left_out
from rag.types import SyncReport
from tests.fakes.embedder import HashingEmbedder
from tests.support import PASSWORD, USER, make_core, settings_for


def test_every_sample_page_is_indexed_or_counted_as_restricted(fake: ConfluenceFake, tmp_path: Path) -> None:
    core = make_core(settings_for(fake, tmp_path / "data"), embedder=HashingEmbedder())
    try:
        first = core.sync(full=True)
        again = core.sync()
    finally:
        core.close()
    total = len(fake.page_ids())
    assert first.ok and first.skipped == 0 and first.skipped_restricted >= 1, (
        "the sample ships restricted pages"
    )
    assert first.added + first.skipped_restricted == total
    assert first.as_dict()["skipped_restricted"] == first.skipped_restricted
    # An incremental run changes nothing and still says what the index leaves out.
    assert again.added == 0 and again.skipped_restricted == first.skipped_restricted
    n = first.skipped_restricted
    assert left_out(first).startswith(f"Skipped {n} page{'' if n == 1 else 's'} as restricted")


def test_left_out_names_each_reason_even_when_zero() -> None:
    now = datetime.now(UTC)
    report = SyncReport(
        started_at=now, finished_at=now, ok=True, skipped=1, skipped_restricted=2, pages_cut=0
    )
    assert left_out(report) == (
        "Skipped 2 pages as restricted (CONFLUENCE_INCLUDE_RESTRICTED=true indexes them) and 1 page failing "
        "to parse; 0 pages too large, indexed only up to PAGE_MAX_CHARS or PAGE_MAX_CHUNKS."
    )


@pytest.mark.usefixtures("hashing_core")
def test_ingest_summary_says_how_many_pages_were_skipped_as_restricted(
    fake: ConfluenceFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "CONFLUENCE_URL": fake.base_url,
        "CONFLUENCE_USERNAME": USER,
        "CONFLUENCE_PASSWORD": PASSWORD,
        "CONFLUENCE_SPACE": "LUMEN",
        "DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert main(["ingest"], stdout=out) == 0
    added = int(out.getvalue().split(": ", 1)[1].split(" added", 1)[0])
    restricted = len(fake.page_ids()) - added
    assert f"Skipped {restricted} pages as restricted" in out.getvalue()


@pytest.mark.usefixtures("hashing_core")
def test_demo_summary_says_how_many_pages_were_skipped_as_restricted(tmp_path: Path) -> None:
    out = io.StringIO()
    run_demo(question=None, data_dir=tmp_path / "demo", out=out)
    text = out.getvalue()
    indexed = int(text.split("Indexed ", 1)[1].split(" pages", 1)[0])
    with ConfluenceFake(username="x", password="y") as sample:
        total = len(sample.page_ids())
    assert total > indexed and f"Skipped {total - indexed} pages as restricted" in text
