"""The int8 ONNX path of the embedder: export once, quantize for this CPU, cache, run with onnxruntime.

Why not sentence-transformers' `backend="onnx"`: it needs optimum/optimum-onnx, whose releases pin
transformers < 4.58 and cannot be installed beside transformers 5. The export here is `torch.onnx.export`
(TorchScript exporter) + `onnxruntime.quantization.quantize_dynamic`; inference is onnxruntime + the model's
own `tokenizers` tokenizer, with the model's pooling and L2 normalisation done in numpy so vectors match
sentence-transformers' output.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import platform
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from filelock import FileLock
from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# Bump when the exported graph or its metadata changes shape: old cache entries are then ignored.
# 2: no attention-mask input (one unpadded text per call needs none).
EXPORT_FORMAT: Final = 2
# Measured on 96 wiki-like 800-character texts: per-channel int8 gives min cosine 0.98 to fp32,
# per-tensor only 0.84; anything under this floor is a broken export, not quantization noise.
MIN_COSINE: Final = 0.95
# How the int8 model is run, measured on chunks of the 27-copy bench wiki (mean 170 tokens), 2 shared
# cores with AVX-512 VNNI, alternating runs: one text per onnxruntime call, one single-threaded call per
# core side by side, beats one two-threaded session on batches (5.8 s against 6.1-6.7 s for 600 chunks;
# a 384-wide model's ops are too small to split across cores without the threads waiting on each other)
# and ties with small batches. One text per call also makes a text's vector independent of its batch:
# dynamic quantization scales activations per call, so padding neighbours would shift it (cosine 0.98).
# And a lone text has no padding, so the graph is exported without an attention mask: building it and
# adding it to every head's scores was 4 % of a call, for a mask of ones.
TEXTS_PER_CALL: Final = 1
# onnxruntime fuses each residual Add + LayerNormalization into one SkipLayerNormalization, whose CPU
# kernel (onnxruntime 1.32, [1, 150, 384]) takes 306 us against 34 us for LayerNormalization (+ a 20 us
# Add): 10 % of a call. Same arithmetic either way; left unfused, a call is 10 % faster.
DISABLED_FUSIONS: Final = ("SkipLayerNormFusion",)
# Callers beyond one per core: while a caller holds the GIL (tokenizing, pooling) or waits for it, a
# spare one keeps the core busy. bench/ingest.py, 27 copies, three alternating pairs: 42.7 s mean with
# one spare against 43.9 s without; two spares were slower again (45.7 s, one run).
SPARE_WORKERS: Final = 1
ENCODING_FIELDS: Final = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}
PROBE_TEXTS: Final = (
    "How do I reset my VPN password?",
    "The change advisory board meets every Tuesday at 10:00 to approve normal changes.",
    "Break-glass accounts are rotated after every use and reviewed by the security team.",
    "Incident priority P1 means a customer-facing service is down for everyone.",
    "Laptops are encrypted with BitLocker; the recovery key is escrowed in Intune.",
    "Les demandes d'accès sont approuvées par le responsable de l'application.",
    "kubectl rollout undo deployment/payments --to-revision=41",
    "Lunch",
    "A very long paragraph about data classification. " * 40,
)


class OnnxUnavailable(Exception):
    """The int8 path cannot serve this model here; the caller falls back to torch."""


@dataclass(frozen=True, slots=True)
class QuantConfig:
    """One dynamic-quantization recipe, named after the CPU feature it targets."""

    name: Literal["avx512_vnni", "avx2", "arm64"]
    per_channel: bool
    reduce_range: bool


def detect_quant_config(cpuinfo: str | None = None, machine: str | None = None) -> QuantConfig | None:
    """Picks the recipe for this CPU; None when int8 kernels are not worth it here."""
    arch = (machine or platform.machine()).lower()
    if arch in {"aarch64", "arm64"}:
        return QuantConfig("arm64", per_channel=True, reduce_range=False)
    if arch not in {"x86_64", "amd64"}:
        return None
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    flags = set(re.findall(r"[a-z0-9_]+", " ".join(line for line in cpuinfo.splitlines() if "flags" in line)))
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return QuantConfig("avx512_vnni", per_channel=True, reduce_range=False)
    if "avx2" in flags:
        # u8s8 products can saturate without VNNI: onnxruntime recommends 7-bit weights there.
        return QuantConfig("avx2", per_channel=True, reduce_range=True)
    return None


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """What the ONNX runner must redo around the transformer: lower-casing, truncation and pooling."""

    pooling: Literal["mean", "cls"]
    do_lower_case: bool


def read_pipeline(model_dir: Path) -> PipelineSpec:
    """Reads modules.json; only Transformer → Pooling(mean|cls) [→ Normalize] can be reproduced exactly."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OnnxUnavailable(f"no readable modules.json in {model_dir}") from exc
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnavailable(f"pipeline {kinds} is not supported by the ONNX path")
    pooling_dir = model_dir / str(modules[1].get("path", "1_Pooling"))
    try:
        pool_cfg = json.loads((pooling_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OnnxUnavailable(f"no readable pooling config in {pooling_dir}") from exc
    mode = pool_cfg.get("pooling_mode")
    if mode is None:
        flags = {k for k, v in pool_cfg.items() if k.startswith("pooling_mode_") and v is True}
        mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
            next(iter(flags)) if len(flags) == 1 else ""
        )
    if mode not in ("mean", "cls"):
        raise OnnxUnavailable(f"pooling {pool_cfg} is not supported by the ONNX path")
    lower = False
    st_cfg = model_dir / "sentence_bert_config.json"
    if st_cfg.is_file():
        lower = bool(json.loads(st_cfg.read_text(encoding="utf-8")).get("do_lower_case", False))
    return PipelineSpec(pooling=mode, do_lower_case=lower)


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (containers).

    A container limited to 2 CPUs on a 64-core node still sees 64 in its affinity; 64 busy workers
    there would be throttled, not faster.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


class OnnxEncoder:
    """Runs the cached int8 graph one text at a time: tokenize (truncate), run, pool, normalise."""

    def __init__(
        self, *, model_path: Path, tokenizer_path: Path, max_seq_length: int, spec: PipelineSpec
    ) -> None:
        options = ort.SessionOptions()
        # One thread per run: parallelism comes from running texts side by side (see TEXTS_PER_CALL);
        # InferenceSession.run is thread-safe and releases the GIL.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(model_path),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_FUSIONS),
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        unknown = set(self._inputs) - ENCODING_FIELDS.keys()
        if unknown:
            raise OnnxUnavailable(f"exported graph wants unknown inputs {sorted(unknown)}")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_seq_length)
        # tokenizer.json often ships a fixed pad length (128 for MiniLM); a lone text needs none, and the
        # graph has no mask to hide padding from the pooling.
        self._tokenizer.no_padding()
        self._spec = spec

    def __call__(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.float32], int]:
        """Unit vectors of `texts`, and how many of them were cut at max_seq_length."""
        if self._spec.do_lower_case:
            texts = [t.lower() for t in texts]
        out: list[npt.NDArray[np.float32]] = []
        truncated = 0
        for text in texts:
            encoding = self._tokenizer.encode(text)
            truncated += bool(encoding.overflowing)
            feed = {
                name: np.array([getattr(encoding, ENCODING_FIELDS[name])], dtype=np.int64)
                for name in self._inputs
            }
            hidden = np.asarray(self._session.run(None, feed)[0][0], dtype=np.float32)
            pooled = hidden.mean(axis=0) if self._spec.pooling == "mean" else hidden[0]
            out.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
        vectors = np.stack(out).astype(np.float32) if out else np.empty((0, 0), dtype=np.float32)
        return vectors, truncated


@dataclass(frozen=True, slots=True)
class CachedModel:
    model_path: Path
    exported: bool
    min_cosine: float
    export_seconds: float


def cache_key(name: str, digest: str, config: QuantConfig, export_format: int = EXPORT_FORMAT) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"
    return f"{slug}-{digest}-int8-{config.name}-v{export_format}"


def _drop_older_formats(root: Path, name: str, digest: str, config: QuantConfig) -> None:
    """Removes this model's exports in formats this release no longer reads (23 MB each for MiniLM)."""
    for old in range(1, EXPORT_FORMAT):
        stale = root / cache_key(name, digest, config, old)
        if stale.exists():
            shutil.rmtree(stale, ignore_errors=True)
            log.info("removed int8 ONNX model %s of an older export format", stale)
        Path(str(stale) + ".lock").unlink(missing_ok=True)


def ensure_int8_model(
    *,
    model_dir: Path,
    name: str,
    digest: str,
    config: QuantConfig,
    cache_dir: Path,
    tokenizer_path: Path,
    max_seq_length: int,
    spec: PipelineSpec,
    load_fp32: Callable[[], Any],
) -> CachedModel:
    """Returns the cached int8 model for this model+recipe, exporting it first if absent.

    A file lock keeps two processes (server and CLI sync) from exporting at once; the finished
    directory is renamed into place so a crash never leaves a half-written model behind.
    """
    root = cache_dir / "onnx"
    root.mkdir(parents=True, exist_ok=True)
    final = root / cache_key(name, digest, config)
    with FileLock(str(final) + ".lock", timeout=600):
        _drop_older_formats(root, name, digest, config)
        cached = _read_cache(final)
        if cached is not None:
            log.info("reusing cached int8 ONNX model %s", final)
            return cached
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
        try:
            min_cos = _export_and_check(
                work=work,
                load_fp32=load_fp32,
                config=config,
                tokenizer_path=tokenizer_path,
                max_seq_length=max_seq_length,
                spec=spec,
            )
            seconds = time.monotonic() - started
            meta = {
                "format": EXPORT_FORMAT,
                "quantization": config.name,
                "min_cosine": min_cos,
                "export_seconds": round(seconds, 2),
                "onnxruntime": ort.__version__,
            }
            (work / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            if final.exists():  # a stale or rejected entry
                shutil.rmtree(final)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("exported int8 ONNX model to %s in %.1fs (min cosine to fp32 %.3f)", final, seconds, min_cos)
        return CachedModel(
            final / "model.int8.onnx", exported=True, min_cosine=min_cos, export_seconds=seconds
        )


def _read_cache(final: Path) -> CachedModel | None:
    model = final / "model.int8.onnx"
    try:
        meta = json.loads((final / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not model.is_file()
        or meta.get("format") != EXPORT_FORMAT
        or float(meta.get("min_cosine", 0)) < MIN_COSINE
    ):
        return None
    return CachedModel(
        model,
        exported=False,
        min_cosine=float(meta["min_cosine"]),
        export_seconds=float(meta["export_seconds"]),
    )


def _export_and_check(
    *,
    work: Path,
    load_fp32: Callable[[], Any],
    config: QuantConfig,
    tokenizer_path: Path,
    max_seq_length: int,
    spec: PipelineSpec,
) -> float:
    # Imported here so that a process reusing the cached model never loads torch.
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    st_model = load_fp32()
    transformer = st_model[0].auto_model
    # The SDPA attention traces into a graph that ran ~1.3x slower in int8 than eager attention here.
    if hasattr(transformer, "set_attn_implementation"):
        transformer.set_attn_implementation("eager")
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    sample = tokenizer.encode("a warm up text")
    # No attention mask: the encoder feeds one unpadded text per call (see TEXTS_PER_CALL), for which the
    # model's default mask (all ones) is the right one. The check against fp32 below proves it.
    field_names = [n for n in ENCODING_FIELDS if n != "attention_mask" and n in _forward_params(transformer)]
    args = tuple(torch.tensor([getattr(sample, ENCODING_FIELDS[n])], dtype=torch.long) for n in field_names)

    class HiddenStates(torch.nn.Module):
        """Positional inputs → last hidden state: the shape torch.onnx.export traces."""

        def __init__(self) -> None:
            super().__init__()
            self.model = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(field_names, tensors, strict=True))).last_hidden_state  # type: ignore[no-any-return]

    fp32_path, int8_path = work / "model.fp32.onnx", work / "model.int8.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in [*field_names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        # TracerWarnings about shape-dependent Python branches: the graph is checked against fp32 below.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            HiddenStates().eval(),
            args,
            str(fp32_path),
            dynamo=False,
            input_names=field_names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
        )
    # onnxruntime's quantizer logs every tensor (and advice) on the root logger: hush it for this call.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(
            str(fp32_path),
            str(int8_path),
            weight_type=QuantType.QInt8,
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
        )
    finally:
        root.setLevel(level)
    fp32_path.unlink()
    encoder = OnnxEncoder(
        model_path=int8_path, tokenizer_path=tokenizer_path, max_seq_length=max_seq_length, spec=spec
    )
    reference = np.asarray(
        st_model.encode(list(PROBE_TEXTS), normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float32,
    )
    min_cos = float((encoder(PROBE_TEXTS)[0] * reference).sum(axis=1).min())
    if min_cos < MIN_COSINE:
        raise OnnxUnavailable(f"int8 model drifts from fp32 (min cosine {min_cos:.3f} < {MIN_COSINE})")
    return min_cos


def _forward_params(module: Any) -> set[str]:
    return set(inspect.signature(module.forward).parameters)
