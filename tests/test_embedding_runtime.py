"""The embedder as loaded on first use: what status, search of an empty index and start-up rely on."""

from __future__ import annotations

from rag.embedding_runtime import LazyEmbedder, token_scaled_length
from rag.ports import Embedder
from tests.fakes.embedder import HashingEmbedder


def test_nothing_loads_the_model_until_a_text_is_embedded() -> None:
    loads: list[HashingEmbedder] = []

    def load() -> Embedder:
        loads.append(HashingEmbedder())
        return loads[-1]

    lazy = LazyEmbedder(load)
    assert lazy.truncated == 0
    lazy.close()
    assert loads == []
    assert lazy.embed_query("vpn") == HashingEmbedder().embed_query("vpn")
    assert lazy.fingerprint == "hashing-test/256" and len(loads) == 1
    lazy.close()
    assert loads[0].closed


def test_a_model_that_reads_any_length_keeps_the_character_budget() -> None:
    assert token_scaled_length(HashingEmbedder(), chunk_size=1000) is len
