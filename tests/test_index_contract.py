"""One contract every index mode passes: embedded Chroma and a real Chroma server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.index import ChromaIndex, open_chroma
from rag.types import Chunk


def _chunk(n: int, text: str, page: str = "p1") -> Chunk:
    return Chunk(
        f"{page}:{n}", page, "LUMEN", f"Title {page}", f"http://wiki/{page}", 1, "2026-01-01", "S", text
    )


def _vec(i: int) -> list[float]:
    v = [0.0] * 8
    v[i % 8] = 1.0
    return v


@pytest.fixture(params=["embedded", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChromaIndex]:
    if request.param == "embedded":
        client = open_chroma(path=tmp_path / "chroma")
    else:
        host, port = request.getfixturevalue("chroma_server")
        client = open_chroma(path=tmp_path / "unused", host=host, port=port)
    index = ChromaIndex(client, f"contract-{uuid.uuid4().hex[:12]}")
    yield index
    index.drop()


def test_empty_at_start(index: ChromaIndex) -> None:
    assert index.count() == 0
    assert index.query(_vec(0), k=3) == []
    assert index.all_chunks() == []


def test_deleting_missing_ids_is_a_no_op(index: ChromaIndex) -> None:
    index.delete(["nope:1", "nope:2"])
    assert index.count() == 0


def test_adding_the_same_ids_twice_is_idempotent(index: ChromaIndex) -> None:
    chunks = [_chunk(i, f"text {i}") for i in range(3)]
    index.upsert(chunks, [_vec(i) for i in range(3)])
    index.upsert(chunks, [_vec(i) for i in range(3)])
    assert index.count() == 3
    assert sorted(index.ids()) == ["p1:0", "p1:1", "p1:2"]


def test_re_adding_changed_content_replaces_it(index: ChromaIndex) -> None:
    index.upsert([_chunk(0, "old words")], [_vec(0)])
    index.upsert([_chunk(0, "new words")], [_vec(1)])
    (only,) = index.all_chunks()
    assert only.text == "new words"
    hit, distance = index.query(_vec(1), k=1)[0]
    assert hit.chunk_id == "p1:0" and distance < 1e-4


def test_query_returns_nearest_with_metadata(index: ChromaIndex) -> None:
    index.upsert([_chunk(0, "a"), _chunk(1, "b", page="p2")], [_vec(0), _vec(1)])
    hit, _ = index.query(_vec(1), k=1)[0]
    assert (hit.page_id, hit.title, hit.url, hit.section, hit.version) == (
        "p2",
        "Title p2",
        "http://wiki/p2",
        "S",
        1,
    )


def test_delete_removes_only_the_named_chunks(index: ChromaIndex) -> None:
    index.upsert([_chunk(i, str(i)) for i in range(4)], [_vec(i) for i in range(4)])
    index.delete(["p1:1", "p1:3"])
    assert sorted(index.ids()) == ["p1:0", "p1:2"]
