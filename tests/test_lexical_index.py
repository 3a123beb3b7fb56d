"""The persisted lexical index (rag/lexical_index.py over SQLite): caught up through real syncs, loaded without a rebuild by a
new process, never holding a search behind a catch-up, fresh for a new collection, our tokenizer kept."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from rag.knowledge import KnowledgeBase, Ledger
from rag.lexical import tokenize
from rag.lexical_index import SqliteLexicalIndex
from rag.ports import ActiveIndex, VectorStoreError
from rag.types import Chunk, IndexedPage
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.memory_index import MemoryStore
from tests.fakes.watched_index import watched
from tests.support import PASSWORD, USER, make_core


def _body(text: str) -> str:
    return f"<h1>Procedure</h1><p>{text}</p>"


@pytest.fixture
def fake() -> Iterator[ConfluenceFake]:
    with ConfluenceFake(username=USER, password=PASSWORD) as fake:
        fake.add_page(
            page_id="9001", title="Badge printer", body=_body("The badge printer is in the quokkaroom.")
        )
        fake.add_page(
            page_id="9002", title="Parking", body=_body("Parking permits come from the wombatdesk.")
        )
        yield fake


def _pages(lexical: SqliteLexicalIndex, active: ActiveIndex, query: str) -> set[str]:
    return {c.page_id for c, _ in lexical.search(query, active=active, k=20)}


def test_an_edit_an_add_and_a_delete_reach_the_lexical_index_through_a_sync(
    core: Core, fake: ConfluenceFake, tmp_path: Path
) -> None:
    # A replica with a data folder of its own over the same store and ledger: it never syncs.
    replica = SqliteLexicalIndex(tmp_path / "replica", core.kb)
    assert core.sync().ok
    active, _ = watched(core.kb.active())
    assert _pages(replica, active, "quokkaroom wombatdesk") == {"9001", "9002"}

    fake.edit_page("9001", body=_body("The badge printer moved to the platypushall."))
    fake.add_page(page_id="9003", title="Lockers", body=_body("Lockers are by the echidnagate."))
    fake.delete_page("9002")
    report = core.sync()
    assert (report.updated, report.added, report.removed) == (1, 1, 1)

    active, window = watched(core.kb.active())
    for lexical in (core.lexical, replica):
        assert _pages(lexical, active, "quokkaroom") == set()
        assert _pages(lexical, active, "platypushall") == {"9001"}
        assert _pages(lexical, active, "echidnagate") == {"9003"}
        assert _pages(lexical, active, "wombatdesk") == set()
    # The replica read the two changed pages' chunks only (the syncing core had caught up already).
    assert {c.split(":")[0] for c in window.fetched} == {"9001", "9003"}
    assert window.full_reads == 0
    replica.close()


def test_a_new_process_over_the_same_data_folder_loads_the_index_without_a_rebuild(
    core: Core, fake: ConfluenceFake
) -> None:
    assert core.sync().ok
    settings = core.settings
    core.close()

    again = make_core(settings, embedder=HashingEmbedder())
    try:
        active, window = watched(again.kb.active())
        assert _pages(again.lexical, active, "quokkaroom") == {"9001"}
        assert window.fetched == [] and window.full_reads == 0
    finally:
        again.close()


def test_a_search_during_a_catch_up_is_answered_from_the_previous_index(
    core: Core, fake: ConfluenceFake, tmp_path: Path
) -> None:
    replica = SqliteLexicalIndex(tmp_path / "replica", core.kb)
    assert core.sync().ok
    assert _pages(replica, _active(core), "quokkaroom") == {"9001"}
    fake.edit_page("9001", body=_body("The badge printer moved to the platypushall."))
    assert core.sync().ok

    active = _active(core)
    _search_while_held(replica, replica, active, before="quokkaroom", after="platypushall", page="9001")
    assert _pages(replica, active, "quokkaroom") == set()
    replica.close()


def test_another_process_catching_up_the_same_file_does_not_hold_a_search(tmp_path: Path) -> None:
    # Two processes over one data folder (serve and a CLI search): one file, two catchers-up.
    kb = _kb(tmp_path)
    _write(kb, {"1": ["the quokkaroom"]})
    writer = SqliteLexicalIndex(tmp_path / "lexical", kb)
    reader = SqliteLexicalIndex(tmp_path / "lexical", kb)
    assert _pages(reader, _active_of(kb), "quokkaroom") == {"1"}
    _write(kb, {"1": ["the platypushall"]}, version=2)

    _search_while_held(writer, reader, _active_of(kb), before="quokkaroom", after="platypushall", page="1")
    writer.close()
    reader.close()


def test_a_catch_up_that_fails_half_way_leaves_the_previous_index_and_the_next_one_completes(
    tmp_path: Path,
) -> None:
    kb = _kb(tmp_path)
    _write(kb, {"1": ["the quokkaroom"], "2": ["the wombatdesk"]})
    lexical = SqliteLexicalIndex(tmp_path / "lexical", kb)
    assert _pages(lexical, _active_of(kb), "quokkaroom") == {"1"}
    _write(kb, {"1": ["the platypushall"], "3": ["the echidnagate"]}, version=2)

    active, window = watched(kb.active())
    window.fail(times=2)
    with pytest.raises(VectorStoreError):
        lexical.catch_up(active)
    # The search's own try fails too: the question is still answered, from the previous index.
    assert _pages(lexical, active, "quokkaroom wombatdesk") == {"1", "2"}
    assert window.fetched == []
    assert _pages(lexical, active, "platypushall echidnagate quokkaroom wombatdesk") == {"1", "2", "3"}
    lexical.close()


def test_a_blue_green_rebuild_gets_a_fresh_file_and_the_old_one_is_deleted(core: Core) -> None:
    assert core.sync().ok
    first = _active(core).name
    assert core.sync(full=True).ok
    active, window = watched(core.kb.active())
    assert active.name != first
    files = {p.name for p in core.settings.lexical_path.iterdir() if p.name.endswith(".sqlite3")}
    assert len(files) == 1 and next(iter(files)).startswith(active.name)
    # Built from the new collection's chunks (at the sync's end), and nothing read since.
    assert _pages(core.lexical, active, "quokkaroom") == {"9001"}
    assert window.fetched == []


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Procédure de REDÉMARRAGE", ["procedure", "redemarrage"]),
        ("Crème brûlée à Noël", ["creme", "brulee", "noel"]),
        # A non-ASCII mark ends a term as a space does: never glued to the next one.
        ("rollback—then redeploy «vite» 10 µs", ["rollback", "then", "redeploy", "vite", "10", "s"]),
        ("kubectl get pods -n a.b-c on port 8443", ["kubectl", "get", "pods", "n", "a.b-c", "port", "8443"]),
        ("Quelle est la procédure pour le VPN ?", ["procedure", "vpn"]),
    ],
)
def test_terms_are_folded_split_and_stopped_as_before(text: str, terms: list[str]) -> None:
    assert tokenize(text) == terms


def test_after_a_blue_green_switch_searches_keep_the_previous_file_until_the_new_one_is_built(
    tmp_path: Path,
) -> None:
    kb = _kb(tmp_path)
    _write(kb, {"1": ["the quokkaroom"]})
    replica = SqliteLexicalIndex(tmp_path / "lexical", kb)
    assert _pages(replica, _active_of(kb), "quokkaroom") == {"1"}
    _write(kb, {"1": ["the platypushall"]}, full=True)

    active, window = watched(kb.active())
    window.hold()
    # The new collection's build runs beside the searches, which answer from the previous file at once.
    assert _pages(replica, active, "quokkaroom platypushall") == {"1"}
    assert window.entered.wait(timeout=10)
    assert _pages(replica, active, "platypushall") == set()
    window.release()
    replica.catch_up(active)  # waits for the build under way
    assert _pages(replica, active, "platypushall") == {"1"}
    assert _pages(replica, active, "quokkaroom") == set()
    assert [p.name for p in (tmp_path / "lexical").glob("*.sqlite3")] == [f"{active.name}.lexical-v1.sqlite3"]
    replica.close()


def test_accents_french_stop_words_and_technical_terms_are_matched_as_before(tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    _write(
        kb,
        {
            "fr": ["Procédure de redémarrage du serveur"],
            "k8s": ["Run kubectl get pods; the proxy listens on port 8443 (kube-proxy.conf)"],
            "other": ["Les notes de la réunion"],
        },
    )
    lexical = SqliteLexicalIndex(tmp_path / "lexical", kb)
    active = _active_of(kb)
    assert _pages(lexical, active, "procedure") == {"fr"}
    assert _pages(lexical, active, "PROCÉDURE redemarrage") == {"fr"}
    # Only stop words: nothing to look for, so nothing is found (not every chunk that says "de").
    assert _pages(lexical, active, "de la les du") == set()
    assert _pages(lexical, active, "kubectl") == {"k8s"}
    assert _pages(lexical, active, "8443") == {"k8s"}
    assert _pages(lexical, active, "kube-proxy.conf") == {"k8s"}
    # A dotted or dashed name is one term (its parts do not match it); a search-engine syntax is only words.
    assert _pages(lexical, active, "proxy") == {"k8s"}
    assert _pages(lexical, active, 'kube AND "NEAR(" OR -conf *') == set()
    lexical.close()


def test_an_index_caught_up_page_by_page_scores_as_one_built_from_scratch(tmp_path: Path) -> None:
    # The corpus statistics (chunks, lengths, document frequencies) follow every removal and addition.
    kb = _kb(tmp_path)
    _write(kb, {str(n): [f"deploy rollback step {n}", f"pipeline stage {n % 3} deploy"] for n in range(12)})
    stepwise = SqliteLexicalIndex(tmp_path / "stepwise", kb)
    stepwise.catch_up(_active_of(kb))
    _write(kb, {"3": ["rollback rollback pipeline"], "20": ["a new deploy page"]}, version=2)
    target = kb.begin(fingerprint="f", full=False)
    kb.remove_pages(target, ["5", "7"])
    kb.finish(target, ok=True, changed=True)
    stepwise.catch_up(_active_of(kb))
    fresh = SqliteLexicalIndex(tmp_path / "fresh", kb)

    for query in ("rollback", "deploy pipeline", "stage 2 step 11", "new page"):
        expected = fresh.search(query, active=_active_of(kb), k=30)
        assert expected and stepwise.search(query, active=_active_of(kb), k=30) == expected
    stepwise.close()
    fresh.close()


def test_more_occurrences_of_a_rarer_word_rank_first(tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    _write(
        kb,
        {
            "once": ["the deploy pipeline runs tests and then deploys"],
            "twice": ["rollback the deploy: rollback steps for the pipeline"],
            "none": ["the pipeline has stages"],
        },
    )
    lexical = SqliteLexicalIndex(tmp_path / "lexical", kb)
    ranked = [c.page_id for c, _ in lexical.search("pipeline rollback", active=_active_of(kb), k=5)]
    assert ranked[0] == "twice" and set(ranked) == {"once", "twice", "none"}
    lexical.close()


# -- helpers ---------------------------------------------------------------------------------------------


def _search_while_held(
    catcher: SqliteLexicalIndex,
    searcher: SqliteLexicalIndex,
    active: ActiveIndex,
    *,
    before: str,
    after: str,
    page: str,
) -> None:
    """Holds catcher's catch-up in its read of the store while searcher answers: at once, from the state
    before (page found by its old word `before`, not yet by its new word `after`); then the catch-up ends."""
    active, window = watched(active)
    window.hold()
    with ThreadPoolExecutor(max_workers=2) as pool:
        catching_up = pool.submit(catcher.catch_up, active)
        assert window.entered.wait(timeout=10)
        during = pool.submit(_pages, searcher, active, f"{before} {after}")
        assert during.result(timeout=5) == {page}
        assert _pages(searcher, active, after) == set()
        assert not catching_up.done()
        window.release()
        catching_up.result(timeout=10)
    assert _pages(searcher, active, after) == {page}


def _active(core: Core) -> ActiveIndex:
    return _active_of(core.kb)


def _active_of(kb: KnowledgeBase) -> ActiveIndex:
    active = kb.active()
    assert active is not None
    return active


def _kb(tmp_path: Path) -> KnowledgeBase:
    return KnowledgeBase(MemoryStore(), Ledger(tmp_path / "state.sqlite3"), prefix="t")


def _write(kb: KnowledgeBase, pages: dict[str, list[str]], *, version: int = 1, full: bool = False) -> None:
    """Pages written as a sync writes them: vectors first, then the ledger, then the revision (or, full, a
    new collection that replaces the active one)."""
    target = kb.begin(fingerprint="f", full=full)
    for page_id, texts in pages.items():
        chunks = [
            Chunk(f"{page_id}:{n}", page_id, "S", page_id, f"u/{page_id}", version, "", "", t)
            for n, t in enumerate(texts)
        ]
        target.vectors.upsert(chunks, [[1.0, 0.0] for _ in chunks])
        kb.put_page(target, IndexedPage(page_id, "S", page_id, version, tuple(c.chunk_id for c in chunks)))
    kb.finish(target, ok=True, changed=True)
