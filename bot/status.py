"""What `wikibot status` and `/healthz` report: read from the index ledger, without loading any model."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from rag.ports import LedgerReader


def status_dict(settings: Settings, ledger: LedgerReader) -> dict[str, Any]:
    summary = ledger.summary()
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
