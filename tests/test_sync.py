"""Ingestion and sync through the real atlassian-python-api client against the loopback Confluence fake."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from rag.chunking import ChunkedPage, PageLimits, chunk_bounded
from rag.index import open_chroma
from rag.knowledge import KnowledgeBase, Ledger
from rag.ports import IndexReader, VectorIndex
from rag.sync import Chunker
from rag.types import Page, SyncReport
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.memory_index import MemoryStore
from tests.support import PASSWORD, USER, make_core, settings_for

MARKER = "zebracorn42"


def _body(text: str) -> str:
    return f"<h1>Procedure</h1><p>{text}</p>"


@pytest.fixture
def fake() -> Iterator[ConfluenceFake]:
    # Small page caps force several batches per listing, as a real Confluence does.
    with ConfluenceFake(username=USER, password=PASSWORD, max_limit=7, max_limit_with_body=4) as fake:
        yield fake


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def core(fake: ConfluenceFake, embedder: HashingEmbedder, tmp_path: Path) -> Iterator[Core]:
    core = make_core(settings_for(fake, tmp_path / "data"), embedder=embedder)
    yield core
    core.close()


def _found(core: Core, query: str) -> set[str]:
    return {h.chunk.page_id for h in core.retriever.search(query, k=5).hits}


def _vectors(core: Core) -> VectorIndex:
    return _vectors_of(core.kb)


def _collections(core: Core) -> set[str]:
    """What Chroma itself holds, asked through a client of its own."""
    return {c.name for c in open_chroma(path=core.settings.chroma_path).list_collections()}


def _chroma_page_ids(core: Core) -> set[str]:
    return {c.page_id for c in _vectors(core).all_chunks()}


def test_first_ingest_pages_through_every_batch_under_the_context_path(
    core: Core, fake: ConfluenceFake
) -> None:
    report = core.sync()
    visible = set(fake.page_ids()) - _restricted_sample_ids(fake)
    assert report.ok, report.errors
    assert report.added == len(visible) > 20
    assert _chroma_page_ids(core) == visible
    listing = [r for r in fake.requests if r.path.endswith("/rest/api/content")]
    assert len(listing) >= 3, "the listing must follow next links past the first batch"
    assert all(r.path.startswith("/wiki/") for r in fake.requests)


def test_second_ingest_fetches_no_bodies_and_embeds_nothing(
    core: Core, fake: ConfluenceFake, embedder: HashingEmbedder
) -> None:
    core.sync()
    index = _vectors(core)
    ids_before = sorted(index.ids())
    embedded_before = embedder.documents_embedded
    fake.clear_requests()

    report = core.sync()

    assert report.ok and report.chunks_embedded == 0 and report.added == report.updated == 0
    assert embedder.documents_embedded == embedded_before
    assert fake.body_requests() == 0
    assert sorted(index.ids()) == ids_before


def test_edited_page_is_re_embedded_and_its_old_text_is_gone(core: Core, fake: ConfluenceFake) -> None:
    fake.add_page(
        page_id="9001", title="Badge printer", body=_body(f"The badge printer is in room {MARKER}.")
    )
    core.sync()
    assert "9001" in _found(core, MARKER)

    fake.edit_page("9001", body=_body("The badge printer moved to the quokkaroom on floor 3."))
    report = core.sync()

    assert report.updated == 1 and report.chunks_embedded >= 1
    assert "9001" in _found(core, "quokkaroom")
    index = _vectors(core)
    assert not any(MARKER in c.text for c in index.all_chunks())


@pytest.mark.parametrize("change", ["delete", "archive", "restrict", "move"])
def test_gone_archived_restricted_or_moved_page_leaves_no_chunk(
    core: Core, fake: ConfluenceFake, change: str
) -> None:
    fake.add_page(page_id="9002", title="Old fax procedure", body=_body(f"Send faxes with {MARKER}."))
    core.sync()
    assert "9002" in _chroma_page_ids(core)

    if change == "delete":
        fake.delete_page("9002")
    elif change == "archive":
        fake.archive_page("9002")
    elif change == "restrict":
        fake.restrict_page("9002")
    else:
        fake.move_page("9002", space="ELSEWHERE")
    report = core.sync()

    assert report.removed == 1
    assert "9002" not in _chroma_page_ids(core)
    assert "9002" not in _found(core, MARKER)


def test_restriction_inherited_from_an_ancestor_keeps_the_child_out(core: Core, fake: ConfluenceFake) -> None:
    fake.add_page(page_id="9100", title="Secret parent", body=_body("parent text"))
    fake.add_page(page_id="9101", title="Innocent child", body=_body(f"child {MARKER}"), parent_id="9100")
    core.sync()
    assert {"9100", "9101"} <= _chroma_page_ids(core)

    fake.restrict_page("9100")
    core.sync()

    assert not {"9100", "9101"} & _chroma_page_ids(core)


def test_restricted_pages_can_be_included_by_setting(fake: ConfluenceFake, tmp_path: Path) -> None:
    restricted = _restricted_sample_ids(fake)
    assert restricted, "the sample wiki ships restricted pages"
    core = make_core(
        settings_for(fake, tmp_path / "d", confluence_include_restricted=True), embedder=HashingEmbedder()
    )
    try:
        core.sync()
        assert restricted <= _chroma_page_ids(core)
    finally:
        core.close()


def test_429_is_retried_after_retry_after(core: Core, fake: ConfluenceFake) -> None:
    fake.fail(429, times=1, retry_after=1)
    report = core.sync()
    assert report.ok, report.errors
    first, second = fake.requests[0], fake.requests[1]
    assert first.status == 429 and second.status == 200
    assert second.path == first.path
    assert second.at - first.at >= 0.9


def test_server_errors_are_retried(core: Core, fake: ConfluenceFake) -> None:
    fake.fail(503, times=2)
    report = core.sync()
    assert report.ok, report.errors
    assert [r.status for r in fake.requests[:3]] == [503, 503, 200]


def test_failure_mid_rebuild_keeps_the_previous_index_answering(core: Core, fake: ConfluenceFake) -> None:
    fake.add_page(page_id="9003", title="Coffee machine", body=_body(f"Descale it with {MARKER}."))
    core.sync()
    before = core.kb.summary().collection
    count = _vectors(core).count()

    fake.fail_after(6, 500)
    report = core.sync(full=True)

    assert not report.ok and report.errors
    assert core.kb.summary().collection == before
    assert _vectors(core).count() == count
    assert "9003" in _found(core, MARKER)
    fake.clear_faults()
    assert core.sync().ok


def test_401_mid_incremental_keeps_the_index_and_the_next_run_catches_up(
    core: Core, fake: ConfluenceFake
) -> None:
    core.sync()
    fake.add_page(page_id="9004", title="Parking", body=_body(f"Parking spot {MARKER}."))
    fake.fail(401, times=100, path_contains="/search")
    failed = core.sync()
    assert not failed.ok and any("401" in e for e in failed.errors)
    assert len(_chroma_page_ids(core)) > 20
    status = core.kb.recent_syncs(1)[0]
    assert status["ok"] is False

    fake.clear_faults()
    caught_up = core.sync()
    assert caught_up.ok and caught_up.added == 1
    assert "9004" in _found(core, MARKER)


def test_full_rebuild_swaps_to_a_new_collection_and_drops_the_old_at_the_next_sync(
    core: Core, fake: ConfluenceFake
) -> None:
    core.sync()
    old = core.kb.summary().collection
    report = core.sync(full=True)
    assert report.ok and report.full
    assert core.kb.summary().collection != old
    # Kept for one interval: a question that read the old pointer on another replica still finishes on it.
    assert old in _collections(core)
    assert core.sync().ok
    assert old not in _collections(core)


def test_a_new_embedding_model_re_embeds_everything_into_a_fresh_collection(
    fake: ConfluenceFake, tmp_path: Path
) -> None:
    settings = settings_for(fake, tmp_path / "data")
    first = make_core(settings, embedder=HashingEmbedder(name="model-a"))
    first.sync()
    old = first.kb.summary().collection
    first.close()

    other = HashingEmbedder(name="model-b")
    second = make_core(settings, embedder=other)
    try:
        report = second.sync()
        assert report.full and report.ok
        assert other.documents_embedded == report.chunks_total > 0
        assert second.kb.summary().collection != old
        assert second.kb.summary().fingerprint == other.fingerprint
    finally:
        second.close()


def test_a_new_chunk_size_re_chunks_everything_and_keeps_dense_search_meanwhile(
    fake: ConfluenceFake, tmp_path: Path
) -> None:
    first = make_core(settings_for(fake, tmp_path / "data", chunk_size=1000), embedder=HashingEmbedder())
    first.sync()
    old, old_count = first.kb.summary().collection, _vectors(first).count()
    first.close()

    second = make_core(settings_for(fake, tmp_path / "data", chunk_size=400), embedder=HashingEmbedder())
    try:
        # Same vectors' model: until the rebuild, questions still use them (not lexical-only).
        assert second.retriever.search("VPN port", k=3).dense_used
        report = second.sync()
        assert report.full and report.ok
        assert second.kb.summary().collection != old
        assert _vectors(second).count() > old_count
        assert not second.sync().full  # once rebuilt, back to incremental
    finally:
        second.close()


def test_one_unparseable_page_does_not_block_the_others(
    fake: ConfluenceFake, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    from rag.sync import sync_once

    fragile = _failing_on("9005")
    fake.add_page(page_id="9005", title="Broken", body=_body("x"))
    core = make_core(settings_for(fake, tmp_path / "data"), embedder=embedder)
    try:
        report = sync_once(source=core.source, index=core.kb, embedder=embedder, chunker=fragile)
        assert report.skipped == 1 and report.added > 20
        assert any("9005" in e for e in report.errors)
        # Not marked as indexed: the next run tries the page again.
        report2 = sync_once(
            source=core.source,
            index=core.kb,
            embedder=embedder,
            chunker=_chunker(),
        )
        assert report2.added == 1 and report2.ok
    finally:
        core.close()


def _restricted_sample_ids(fake: ConfluenceFake) -> set[str]:
    return _restricted_ids_of(fake, username=USER, password=PASSWORD, cloud=True)


def test_the_same_sync_runs_against_a_chroma_server(
    fake: ConfluenceFake, tmp_path: Path, chroma_server: tuple[str, int]
) -> None:
    host, port = chroma_server
    settings = settings_for(
        fake, tmp_path / "data", chroma_host=host, chroma_port=port, chroma_collection="srvtest"
    )
    core = make_core(settings, embedder=HashingEmbedder())
    try:
        fake.add_page(page_id="9300", title="Server mode", body=_body(f"Served by {MARKER}."))
        first = core.sync()
        ids = sorted(_vectors(core).ids())
        second = core.sync()
        assert first.ok and second.ok and second.chunks_embedded == 0
        assert sorted(_vectors(core).ids()) == ids
        assert "9300" in _found(core, MARKER)
        assert not (tmp_path / "data" / "chroma").exists(), "server mode must not write an embedded store"
    finally:
        core.close()


@pytest.mark.parametrize("context_path", ["", "/confluence"])
def test_data_center_with_a_personal_access_token_pages_to_the_end(tmp_path: Path, context_path: str) -> None:
    with ConfluenceFake(context_path=context_path, token="dc-pat", max_limit=5, max_limit_with_body=3) as dc:
        settings = settings_for(
            None,
            tmp_path / "data",
            confluence_url=dc.base_url,
            confluence_token="dc-pat",
            confluence_cloud=False,
        )
        core = make_core(settings, embedder=HashingEmbedder())
        try:
            report = core.sync()
            assert report.ok, report.errors
            assert report.added == len(
                set(dc.page_ids()) - _restricted_ids_of(dc, token="dc-pat", cloud=False)
            )
            assert all(r.path.startswith(f"{context_path}/rest/api/") for r in dc.requests)
            assert all(r.status == 200 for r in dc.requests)
        finally:
            core.close()


def _restricted_ids_of(fake: ConfluenceFake, **auth: Any) -> set[str]:
    """Which sample pages are restricted, asked of the fake through the real client."""
    from atlassian import Confluence

    from rag.confluence import ConfluenceSource
    from rag.sync import restricted_ids

    client = Confluence(url=fake.base_url, **auth)
    return restricted_ids(ConfluenceSource(client, spaces=["LUMEN"]).list_pages())


class _BrokenEmbedder(HashingEmbedder):
    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        raise RuntimeError("model server out of memory")


def test_a_rebuild_whose_embedder_fails_is_thrown_away(
    core: Core, fake: ConfluenceFake, tmp_path: Path
) -> None:
    from rag.sync import sync_once

    core.sync()
    before, count = core.kb.summary().collection, _vectors(core).count()
    report = sync_once(
        source=core.source, index=core.kb, embedder=_BrokenEmbedder(), chunker=_chunker(), full=True
    )
    assert not report.ok and "embedding failed" in report.errors[0]
    assert core.kb.summary().collection == before and _vectors(core).count() == count
    assert _collections(core) == {before}


def test_an_index_write_failure_is_reported_not_raised(core: Core, fake: ConfluenceFake) -> None:
    from rag.sync import sync_once

    core.sync()
    fake.edit_page("1004", body=_body(f"VPN moved to {MARKER}."))
    # Same fingerprint, other vector size: Chroma refuses the write.
    report = sync_once(source=core.source, index=core.kb, embedder=_SameName(dims=64), chunker=_chunker())
    assert not report.ok and report.errors[0].startswith("sync aborted")
    assert core.kb.recent_syncs(1)[0]["ok"] is False


class _SameName(HashingEmbedder):
    @property
    def fingerprint(self) -> str:
        return "hashing-test/256"


def test_a_page_that_always_fails_is_retried_alone_and_does_not_fail_the_runs(
    fake: ConfluenceFake, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    from rag.sync import sync_once

    fragile = _failing_on("9006")
    fake.add_page(page_id="9006", title="Broken", body=_body("x"))
    core = make_core(settings_for(fake, tmp_path / "data"), embedder=embedder)
    try:
        first = sync_once(source=core.source, index=core.kb, embedder=embedder, chunker=fragile)
        assert first.ok and first.skipped == 1 and any("9006" in e for e in first.errors)
        fake.clear_requests()
        second = sync_once(source=core.source, index=core.kb, embedder=embedder, chunker=fragile)
        assert second.ok and second.skipped == 1
        # Only recent changes are fetched again (one batch holding the failing page), not the whole space.
        assert fake.body_requests() == 1
    finally:
        core.close()


def test_a_shutdown_stops_a_rebuild_and_keeps_the_old_index(core: Core, fake: ConfluenceFake) -> None:
    import threading

    core.sync()
    before = core.kb.summary().collection
    stop = threading.Event()
    stop.set()
    report = core.sync(full=True, stop=stop)
    assert not report.ok and "shutting down" in report.errors[0]
    assert core.kb.summary().collection == before


def test_after_a_model_change_questions_are_answered_lexically_until_the_rebuild(
    fake: ConfluenceFake, tmp_path: Path
) -> None:
    settings = settings_for(fake, tmp_path / "data")
    fake.add_page(page_id="9007", title="Espresso", body=_body(f"The espresso machine is {MARKER}."))
    old = make_core(settings, embedder=HashingEmbedder(name="old", dims=256))
    old.sync()
    old.close()

    new = make_core(settings, embedder=HashingEmbedder(name="new", dims=128))
    try:
        found = new.retriever.search(MARKER)
        assert not found.dense_used and found.hits[0].chunk.page_id == "9007"
        assert new.sync().full
        again = new.retriever.search(MARKER)
        assert again.dense_used and again.hits[0].chunk.page_id == "9007"
    finally:
        new.close()


def test_a_listing_without_restrictions_fails_closed() -> None:
    from rag.confluence import ConfluenceSource

    class Client:
        url = "http://wiki.example/wiki"

        def get(self, path: str, *, params: Any = None, absolute: bool = False) -> Any:
            page = {"id": "1", "title": "T", "version": {"number": 1}, "ancestors": []}
            return {"results": [page, {**page, "id": "2", "restrictions": {"read": {"restrictions": {}}}}]}

    refs = ConfluenceSource(Client(), spaces=["LUMEN"]).list_pages()
    assert [(r.page_id, r.restricted) for r in refs] == [("1", True), ("2", False)]


def _failing_on(page_id: str) -> Chunker:
    """The usual chunker, but one page cannot be parsed."""
    chunker = _chunker()

    def fragile(page: Page) -> ChunkedPage:
        if page.page_id == page_id:
            raise ValueError("unparseable")
        return chunker(page)

    return fragile


def _chunker() -> Chunker:
    return partial(
        chunk_bounded,
        limits=PageLimits(max_chars=1_000_000, max_chunks=1_000),
        chunk_size=800,
        chunk_overlap=100,
    )


class _FailsOnCall(HashingEmbedder):
    """Works for `good` calls of embed_documents, then fails: the model dying mid-run."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.calls = 0
        self._good = good

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls > self._good:
            raise RuntimeError("model server out of memory")
        return super().embed_documents(texts)


def test_an_embedder_dying_mid_sync_keeps_every_page_whole_and_the_next_run_finishes(
    core: Core, fake: ConfluenceFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Groups embed while the previous group is written: a failure must still leave each page either
    # at its old version or wholly at its new one, and the next run must pick up exactly the rest.
    import rag.sync
    from rag.sync import sync_once

    core.sync()
    edited = sorted(set(fake.page_ids()) - _restricted_sample_ids(fake))
    for page_id in edited:
        fake.edit_page(page_id, body=_body(f"Page {page_id} now says {MARKER}."))
    monkeypatch.setattr(rag.sync, "_GROUP_CHUNKS", 3)
    dying = _FailsOnCall(good=2)
    report = sync_once(source=core.source, index=core.kb, embedder=dying, chunker=_chunker())
    assert not report.ok and "embedding failed" in report.errors[0]
    assert 0 < report.updated < len(edited)

    index = _vectors(core)
    by_page: dict[str, list[str]] = {}
    for chunk in index.all_chunks():
        by_page.setdefault(chunk.page_id, []).append(chunk.text)
    new = {p for p, texts in by_page.items() if any(MARKER in t for t in texts)}
    assert len(new) == report.updated
    assert all(len(by_page[p]) == 1 for p in new)  # the new one-paragraph body, no old chunk left over

    again = sync_once(source=core.source, index=core.kb, embedder=HashingEmbedder(), chunker=_chunker())
    assert again.ok and again.updated == len(edited) - report.updated
    chunks = index.all_chunks()
    assert sorted(c.page_id for c in chunks) == edited
    assert all(MARKER in c.text for c in chunks)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def memory_kb(store: MemoryStore, tmp_path: Path) -> Iterator[KnowledgeBase]:
    """The same ledger and switch over the in-memory store, whose drops can be made to fail."""
    kb = KnowledgeBase(store, Ledger(tmp_path / "ledger.sqlite3"), prefix="mem")
    yield kb
    kb.close()


def _sync_into(
    kb: KnowledgeBase, core: Core, embedder: HashingEmbedder | None = None, **kw: Any
) -> SyncReport:
    from rag.sync import sync_once

    return sync_once(
        source=core.source, index=kb, embedder=embedder or HashingEmbedder(), chunker=_chunker(), **kw
    )


@pytest.mark.parametrize("rebuild_ok", [True, False], ids=["replaced", "failed-rebuild"])
def test_a_collection_that_could_not_be_dropped_is_dropped_by_the_next_sync(
    core: Core, memory_kb: KnowledgeBase, store: MemoryStore, rebuild_ok: bool
) -> None:
    assert _sync_into(memory_kb, core).ok
    before = memory_kb.summary().collection
    store.fail_drops(1)

    rebuild = _sync_into(memory_kb, core, HashingEmbedder() if rebuild_ok else _BrokenEmbedder(), full=True)
    if rebuild_ok:
        # A replaced collection is kept until the next sync, whose drop is the one that fails.
        assert _sync_into(memory_kb, core).ok

    # Readers see one whole collection (the new one, or the old one after a failed rebuild); the one
    # that was to be dropped (the replaced one, or the failed rebuild) is still in the store.
    active = memory_kb.summary().collection
    assert rebuild.ok is rebuild_ok and (active != before) is rebuild_ok
    assert len(store.names()) == 2 and active in store.names()
    assert memory_kb.summary().chunks == _vectors_of(memory_kb).count() > 0

    assert _sync_into(memory_kb, core).ok
    assert store.names() == [active]


def _vectors_of(kb: IndexReader) -> VectorIndex:
    active = kb.active()
    assert active is not None
    return active.vectors
