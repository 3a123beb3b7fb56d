"""The vector store is the truth: readiness asks it, and a sync repairs or rebuilds a ledger it contradicts.

The real Confluence client against the loopback fake, embedded Chroma, the hashing embedder.
"""

from __future__ import annotations

from dataclasses import replace

from bot.app import Core
from rag.index import ChromaStore, open_chroma


def _store(core: Core) -> ChromaStore:
    """Chroma through a client of its own, as another process (or an operator) would reach it."""
    return ChromaStore(open_chroma(path=core.settings.chroma_path))


def test_readiness_says_not_ready_until_the_first_sync_has_filled_the_index(core: Core) -> None:
    before = core.kb.readiness()
    assert not before.ready and "empty" in before.reason
    assert core.sync().ok
    after = core.kb.readiness()
    assert after.ready and after.stored_chunks == after.chunks > 0


def test_a_collection_lost_from_the_store_is_not_ready_and_the_next_sync_rebuilds_it(core: Core) -> None:
    first = core.sync()
    lost = core.kb.summary().collection
    assert lost is not None
    _store(core).drop(lost)  # as another replica's switch, or a wiped Chroma, would

    readiness = core.kb.readiness()
    assert not readiness.ready and "missing" in readiness.reason
    # Never re-created empty behind our back: a reader sees no index rather than an empty one.
    assert core.kb.active() is None and lost not in _store(core).names()

    again = core.sync()
    assert again.ok and again.full and again.added == first.added
    assert core.kb.readiness().ready and core.kb.summary().collection != lost


def test_chunks_the_ledger_does_not_list_are_deleted_and_a_page_missing_chunks_is_indexed_again(
    core: Core,
) -> None:
    assert core.sync().ok
    active = core.kb.active()
    assert active is not None
    vectors = _store(core).existing(active.name)
    victim = next(iter(vectors.all_chunks()))
    stray = next(c for c in vectors.all_chunks() if c.page_id != victim.page_id)
    # A process killed between a page's chunk writes and its ledger record leaves both kinds behind.
    vectors.delete([victim.chunk_id])
    strays = [replace(stray, chunk_id=f"stray:{n}") for n in range(2)]
    vectors.upsert(strays, core.embedder.embed_documents([c.text for c in strays]))

    report = core.sync()

    assert report.ok and not report.full and report.added == 1
    ids = set(vectors.ids())
    assert victim.chunk_id in ids and not {"stray:0", "stray:1"} & ids
    assert len(ids) == core.kb.summary().chunks
