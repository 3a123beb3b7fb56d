"""What `wikibot status` and `/healthz` report: read from the state store, without loading any model."""

from __future__ import annotations

from typing import Any

from bot.config import Settings


def status_dict(settings: Settings) -> dict[str, Any]:
    from rag.state import StateStore

    state = StateStore(settings.state_path)
    try:
        active = state.get("active_collection") or ""
        pages, chunks, spaces = state.counts(active) if active else (0, 0, [])
        syncs = state.recent_syncs(settings.health_max_failed_syncs)
        last_ok = next((s for s in state.recent_syncs(200) if s.get("ok")), None)
        return {
            "spaces": spaces or list(settings.spaces),
            "pages": pages,
            "chunks": chunks,
            "last_ingest": last_ok["finished_at"] if last_ok else None,
            "last_sync": syncs[0] if syncs else None,
            "failed_syncs_in_a_row": next((i for i, s in enumerate(syncs) if s.get("ok")), len(syncs)),
            "embedding_model": state.get("active_fingerprint"),
            "collection": active or None,
        }
    finally:
        state.close()
