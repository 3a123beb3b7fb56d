"""What `wikibot status` and `/healthz` report: read from the index ledger, without loading any model."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from rag.ports import LedgerReader
from rag.types import IndexSummary, SyncReport


def status_dict(
    settings: Settings, ledger: LedgerReader, *, summary: IndexSummary | None = None
) -> dict[str, Any]:
    summary = summary or ledger.summary()
    syncs = ledger.recent_syncs(settings.health_max_failed_syncs)
    last_ok = ledger.last_good_sync()
    return {
        "spaces": list(summary.spaces) or list(settings.spaces),
        "pages": summary.pages,
        "chunks": summary.chunks,
        "last_ingest": last_ok["finished_at"] if last_ok else None,
        "last_sync": syncs[0] if syncs else None,
        "failed_syncs_in_a_row": next((i for i, s in enumerate(syncs) if s.get("ok")), len(syncs)),
        "embedding_model": summary.fingerprint,
        "collection": summary.collection,
    }


def left_out(report: SyncReport) -> str:
    """What a sync did not index, or indexed only in part: one line for the ingest and demo summaries.

    Said even when nothing was left out, so "Indexed 36 pages" of a 38-page wiki never reads as all of it.
    Pages are never skipped for their size: a page over PAGE_MAX_CHARS or PAGE_MAX_CHUNKS is indexed up to
    the limit, and counted here as too large.
    """
    return (
        f"Skipped {_pages(report.skipped_restricted)} as restricted"
        f"{' (CONFLUENCE_INCLUDE_RESTRICTED=true indexes them)' if report.skipped_restricted else ''}"
        f" and {_pages(report.skipped)} failing to parse; "
        f"{_pages(report.pages_cut)} too large, indexed only up to PAGE_MAX_CHARS or PAGE_MAX_CHUNKS."
    )


def _pages(n: int) -> str:
    return f"{n} page{'' if n == 1 else 's'}"
