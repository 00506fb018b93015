"""Vectors computed ahead of time for known texts, so they are not encoded again.

The demo corpus ships its passages' vectors (`bot/demo/vectors.npz`, written by
`python -m tests.support.demo_vectors`): `make run` and every fresh demo ingestion would
otherwise spend most of their start-up encoding the same 190 passages (`serve --demo`: 13 s
of CPU before it is ready, 5 s with the table). The table holds the model's name and, per
text, the SHA-256 of the text and its float32 vector; it is used only by an embedder of the
same model (and dimension), and only for texts whose digest it holds. Every other text is
encoded as usual, so a stale table costs time, never correctness (and
`tests/integration/test_demo_vectors.py` fails when it is stale).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.ports import Embedder


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class KnownVectors:
    """An embedder that answers known texts from a table and encodes the rest."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self._inner = inner
        self._path = path
        self._table: dict[bytes, list[float]] | None = None  # read on first use

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def __getattr__(self, attribute: str) -> object:  # e.g. the local model's `backend`
        return getattr(self._inner, attribute)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._table is None:
            self._table = load_table(self._path, self.name, self.dimension)
        found = [self._table.get(digest(text)) for text in texts]
        missing = [i for i, vector in enumerate(found) if vector is None]
        if missing:
            encoded = self._inner.embed([texts[i] for i in missing])
            for i, vector in zip(missing, encoded, strict=True):
                found[i] = vector
        return found  # type: ignore[return-value]


def load_table(path: Path, model: str, dimension: int) -> dict[bytes, list[float]]:
    """The table at `path` when `model` computed it; else empty."""
    if not path.is_file():
        return {}
    with np.load(path) as data:
        if str(data["model"]) != model:
            return {}
        vectors = data["vectors"]
        if vectors.ndim != 2 or vectors.shape[1] != dimension:
            return {}
        return dict(zip((bytes(d) for d in data["digests"]), vectors.tolist(), strict=True))


def save_table(path: Path, texts: Sequence[str], embedder: Embedder) -> None:
    """Encode `texts` with `embedder` and write them as its table (sorted by digest)."""
    unique = sorted(set(texts), key=digest)
    vectors = np.asarray(embedder.embed(unique), dtype=np.float32)
    digests = np.frombuffer(b"".join(digest(t) for t in unique), dtype=np.uint8).reshape(-1, 32)
    np.savez_compressed(path, model=np.str_(embedder.name), digests=digests, vectors=vectors)
