"""The index ledger and its blue/green switch, over the in-memory store."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from rag.knowledge import KnowledgeBase, Ledger
from rag.types import Chunk, IndexedPage
from tests.fakes.memory_index import MemoryStore


def test_a_ledger_written_by_the_previous_version_opens_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    # The schema and keys the previous version wrote (rag/state.py before the ledger module).
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE pages (collection TEXT NOT NULL, page_id TEXT NOT NULL, space TEXT NOT NULL,
            title TEXT NOT NULL, version INTEGER NOT NULL, chunk_ids TEXT NOT NULL,
            PRIMARY KEY (collection, page_id));
        CREATE TABLE syncs (id INTEGER PRIMARY KEY AUTOINCREMENT, ok INTEGER NOT NULL, report TEXT NOT NULL);
        """
    )
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [
            ("active_collection", "wikibot-1234abcd-20260101t000000000000"),
            ("active_fingerprint", "model/256"),
            ("active_layout", "chunks-v3/1000/150"),
            ("revision", "7"),
            ("last_success_started_at", "2026-01-01T00:00:00+00:00"),
        ],
    )
    db.execute(
        "INSERT INTO pages VALUES (?, ?, ?, ?, ?, ?)",
        ("wikibot-1234abcd-20260101t000000000000", "42", "LUMEN", "VPN", 3, json.dumps(["42:0", "42:1"])),
    )
    db.execute(
        "INSERT INTO syncs (ok, report) VALUES (1, ?)", (json.dumps({"ok": True, "finished_at": "x"}),)
    )
    db.commit()
    db.close()

    store = MemoryStore()  # the collection it names is in the vector store, as it was left
    chunks = [Chunk(f"42:{n}", "42", "LUMEN", "VPN", "http://w/42", 3, "", "", "text") for n in range(2)]
    store.open("wikibot-1234abcd-20260101t000000000000").upsert(chunks, [[1.0, 0.0]] * 2)
    kb = KnowledgeBase(store, Ledger(path), prefix="wikibot", layout="chunks-v3/1000/150")
    try:
        summary = kb.summary()
        assert (summary.collection, summary.fingerprint, summary.pages, summary.chunks, summary.spaces) == (
            "wikibot-1234abcd-20260101t000000000000",
            "model/256",
            1,
            2,
            ("LUMEN",),
        )
        active = kb.active()
        assert active is not None and active.revision == 7
        assert not kb.needs_rebuild(fingerprint="model/256")
        assert kb.needs_rebuild(fingerprint="other/256")
        assert kb.last_success() == datetime(2026, 1, 1, tzinfo=UTC)
        assert kb.last_good_sync() == {"ok": True, "finished_at": "x"}
        target = kb.begin(fingerprint="model/256", full=False)
        assert not target.rebuild and kb.indexed_pages(target)["42"].chunk_ids == ("42:0", "42:1")
    finally:
        kb.close()


def test_a_rebuild_killed_before_it_finished_is_dropped_by_the_next_sync(tmp_path: Path) -> None:
    store = MemoryStore()
    ledger = tmp_path / "state.sqlite3"
    first = KnowledgeBase(store, Ledger(ledger), prefix="wikibot")
    killed = first.begin(fingerprint="model/8", full=True)
    killed.vectors.upsert([], [])
    first.put_page(killed, IndexedPage("1", "LUMEN", "T", 1, ("1:0",)))
    first.close()  # the process dies here: no finish()

    second = KnowledgeBase(store, Ledger(ledger), prefix="wikibot")
    try:
        assert second.summary().collection is None
        target = second.begin(fingerprint="model/8", full=False)
        assert target.rebuild and target.name != killed.name
        assert store.names() == [target.name]
        second.finish(target, ok=True, changed=True)
        assert second.summary().collection == target.name
        second.begin(fingerprint="model/8", full=False)
        assert store.names() == [target.name], "an activated collection is never dropped"
    finally:
        second.close()
