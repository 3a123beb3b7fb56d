"""One contract every vector store passes: in memory, embedded Chroma and a real Chroma server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromadb.api import ClientAPI

from rag.index import ChromaStore, open_chroma
from rag.ports import MissingCollection, VectorIndex, VectorStore, VectorStoreError
from rag.types import Chunk
from tests.fakes.memory_index import MemoryStore
from tests.fakes.tcp_proxy import TcpProxy


def _chunk(n: int, text: str, page: str = "p1") -> Chunk:
    return Chunk(
        f"{page}:{n}", page, "LUMEN", f"Title {page}", f"http://wiki/{page}", 1, "2026-01-01", "S", text
    )


def _vec(i: int) -> list[float]:
    v = [0.0] * 8
    v[i % 8] = 1.0
    return v


@pytest.fixture(params=["memory", "embedded", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "embedded":
        return ChromaStore(open_chroma(path=tmp_path / "chroma"))
    host, port = request.getfixturevalue("chroma_server")
    return ChromaStore(open_chroma(path=tmp_path / "unused", host=host, port=port))


@pytest.fixture
def index(store: VectorStore) -> Iterator[VectorIndex]:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    yield store.open(name)
    store.drop(name)


def test_empty_at_start(index: VectorIndex) -> None:
    assert index.count() == 0
    assert index.query(_vec(0), k=3) == []
    assert index.all_chunks() == []


def test_deleting_missing_ids_is_a_no_op(index: VectorIndex) -> None:
    index.delete(["nope:1", "nope:2"])
    assert index.count() == 0


def test_adding_the_same_ids_twice_is_idempotent(index: VectorIndex) -> None:
    chunks = [_chunk(i, f"text {i}") for i in range(3)]
    index.upsert(chunks, [_vec(i) for i in range(3)])
    index.upsert(chunks, [_vec(i) for i in range(3)])
    assert index.count() == 3
    assert sorted(index.ids()) == ["p1:0", "p1:1", "p1:2"]


def test_re_adding_changed_content_replaces_it(index: VectorIndex) -> None:
    index.upsert([_chunk(0, "old words")], [_vec(0)])
    index.upsert([_chunk(0, "new words")], [_vec(1)])
    (only,) = index.all_chunks()
    assert only.text == "new words"
    hit, distance = index.query(_vec(1), k=1)[0]
    assert hit.chunk_id == "p1:0" and distance < 1e-4


def test_get_returns_the_named_chunks_that_are_there_with_their_metadata(index: VectorIndex) -> None:
    index.upsert(
        [_chunk(i, f"text {i}") for i in range(3)] + [_chunk(0, "other", page="p2")],
        [_vec(i) for i in range(4)],
    )
    got = index.get(["p1:2", "nope:1", "p2:0", "p1:2"])
    assert sorted(got, key=lambda c: c.chunk_id) == [_chunk(2, "text 2"), _chunk(0, "other", page="p2")]
    assert index.get([]) == []


def test_get_reads_past_one_batch(index: VectorIndex) -> None:
    chunks = [_chunk(i, f"text {i}") for i in range(2500)]
    index.upsert(chunks, [_vec(i) for i in range(2500)])
    assert {c.chunk_id for c in index.get([c.chunk_id for c in chunks])} == {c.chunk_id for c in chunks}


def test_query_returns_nearest_with_metadata(index: VectorIndex) -> None:
    index.upsert([_chunk(0, "a"), _chunk(1, "b", page="p2")], [_vec(0), _vec(1)])
    hit, _ = index.query(_vec(1), k=1)[0]
    assert (hit.page_id, hit.title, hit.url, hit.section, hit.version) == (
        "p2",
        "Title p2",
        "http://wiki/p2",
        "S",
        1,
    )


def test_delete_removes_only_the_named_chunks(index: VectorIndex) -> None:
    index.upsert([_chunk(i, str(i)) for i in range(4)], [_vec(i) for i in range(4)])
    index.delete(["p1:1", "p1:3"])
    assert sorted(index.ids()) == ["p1:0", "p1:2"]


def test_a_collection_opened_twice_is_the_same_collection(store: VectorStore) -> None:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    store.open(name).upsert([_chunk(0, "shared")], [_vec(0)])
    try:
        assert [c.text for c in store.open(name).all_chunks()] == ["shared"]
        assert name in store.names()
    finally:
        store.drop(name)


def test_a_dropped_collection_is_gone_and_dropping_it_again_is_a_no_op(store: VectorStore) -> None:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    store.open(name).upsert([_chunk(0, "doomed")], [_vec(0)])
    store.drop(name)
    store.drop(name)
    assert name not in store.names()
    assert store.open(name).count() == 0
    store.drop(name)


def test_a_drop_while_the_server_is_unreachable_is_a_store_error(chroma_server: tuple[str, int]) -> None:
    with TcpProxy(chroma_server) as network:
        store = ChromaStore(open_chroma(path=Path("unused"), host="127.0.0.1", port=network.port))
        name = f"contract-{uuid.uuid4().hex[:12]}"
        store.open(name).upsert([_chunk(0, "kept")], [_vec(0)])
        network.down()
        with pytest.raises(VectorStoreError, match=name):
            store.drop(name)
        network.up()
        assert name in store.names()
        store.drop(name)
        assert name not in store.names()


def test_an_existing_collection_is_never_created_behind_the_callers_back(store: VectorStore) -> None:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    with pytest.raises(MissingCollection):
        store.existing(name)
    assert name not in store.names()
    store.open(name).upsert([_chunk(0, "there")], [_vec(0)])
    try:
        assert store.existing(name).count() == 1
    finally:
        store.drop(name)


def test_a_handle_on_a_dropped_collection_says_it_is_missing(store: VectorStore) -> None:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    handle = store.open(name)
    handle.upsert([_chunk(0, "soon gone")], [_vec(0)])
    store.drop(name)  # as another replica's blue/green switch would
    with pytest.raises(MissingCollection):
        handle.count()
    assert name not in store.names()


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_a_collection_of_an_older_release_is_searched_with_the_configured_ef_search(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def client() -> ClientAPI:
        if where == "embedded":
            return open_chroma(path=tmp_path / "chroma")
        host, port = request.getfixturevalue("chroma_server")
        return open_chroma(path=tmp_path / "unused", host=host, port=port)

    older, newer = f"older-{uuid.uuid4().hex[:8]}", f"newer-{uuid.uuid4().hex[:8]}"
    # As every release before CHROMA_HNSW_EF_SEARCH made it: Chroma's default graph search (100).
    client().create_collection(older, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    ChromaStore(client(), ef_search=640).existing(older)
    ChromaStore(client()).open(newer)
    configured = {
        name: (client().get_collection(name, embedding_function=None).configuration or {})["hnsw"][
            "ef_search"
        ]
        for name in (older, newer)
    }
    assert configured == {older: 640, newer: 800}


def _recall_at_20(tmp_path: Path, ef_search: int | None) -> float:
    """Dense recall against exact search, on vectors hard enough for a graph index to miss neighbours."""
    import numpy as np

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((4000, 48)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((40, 48)).astype(np.float32)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :20]
    folder = tmp_path / f"ef-{ef_search}"
    options = {} if ef_search is None else {"ef_search": ef_search}
    index = ChromaStore(open_chroma(path=folder), **options).open("recall")
    index.upsert([_chunk(i, f"text {i}") for i in range(len(vectors))], vectors.tolist())
    found = 0
    for q, best in zip(queries, exact, strict=True):
        got = {int(c.chunk_id.split(":")[1]) for c, _ in index.query(q.tolist(), k=20)}
        found += len(got & set(best.tolist()))
    return found / exact.size


def test_dense_search_finds_the_exact_nearest_chunks_with_the_default_ef_search(tmp_path: Path) -> None:
    from bot.config import load_settings
    from rag.index import DEFAULT_EF_SEARCH

    assert load_settings(data_dir=tmp_path / "data").chroma_hnsw_ef_search == DEFAULT_EF_SEARCH
    assert _recall_at_20(tmp_path, None) >= 0.97
    # The same data with a narrow search misses some: the setting is what the recall rests on.
    assert _recall_at_20(tmp_path, 20) < 0.9
