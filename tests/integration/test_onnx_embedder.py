"""The ONNX Runtime encoder gives the packaged MiniLM's own vectors (real model, both runtimes).

Indexes built with the torch encoder stay valid: every vector must match the torch output to
cosine ≥ 0.999, whatever the batch, the text lengths or the truncation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adapters.embeddings import local, onnx_minilm
from adapters.embeddings.local import LOCAL_MODEL_NAME, LocalMiniLMEmbedder
from adapters.embeddings.onnx_export import export_minilm

pytestmark = pytest.mark.slow

TEXTS = [
    "How many PTO days do I get after 3 years?",
    "hi",
    "",
    "Wie viele Urlaubstage habe ich? Ça dépend — 休暇は何日ですか",
    "VPN setup: install the client and sign in with your badge number. " * 3,
    # Longer than the model's 256 tokens: both runtimes must truncate the same way.
    "Expense policy: hotel stays are reimbursed up to 250 dollars a night. " * 40,
    *(f"Question number {n}: when does the office close on day {n}?" for n in range(20)),
]


@pytest.fixture
def fresh_loader() -> Iterator[None]:
    local._load_onnx.cache_clear()
    yield
    local._load_onnx.cache_clear()


def _cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    x, y = np.array(a), np.array(b)
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def test_onnx_vectors_are_the_torch_models_vectors() -> None:
    onnx = LocalMiniLMEmbedder(batch_size=8)
    torch = LocalMiniLMEmbedder(backend="torch")
    assert onnx.backend == "onnx"
    assert onnx.name == torch.name == LOCAL_MODEL_NAME
    got, want = onnx.embed(TEXTS), torch.embed(TEXTS)
    assert len(got) == len(TEXTS)
    assert all(len(v) == onnx.dimension for v in got)
    assert np.allclose(np.linalg.norm(np.array(got), axis=1), 1.0, atol=1e-4)
    assert _cosines(got, want).min() >= 0.999


def test_a_text_gets_the_same_vector_alone_or_in_any_batch() -> None:
    embedder = LocalMiniLMEmbedder(batch_size=4)
    together = embedder.embed(TEXTS)
    alone = [embedder.embed([text])[0] for text in TEXTS[:6]]
    assert _cosines(together[:6], alone).min() >= 0.99999
    assert _cosines(embedder.embed(list(reversed(TEXTS))), list(reversed(together))).min() >= (
        0.99999
    )


def test_the_export_is_cached_and_a_damaged_cache_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = local._model_dir()
    exported = export_minilm(model_dir)
    exports: list[Path] = []

    def counting_export(path: Path) -> bytes:
        exports.append(path)
        return exported

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("adapters.embeddings.onnx_export.export_minilm", counting_export)
    first = onnx_minilm.load_onnx_encoder(model_dir, threads=1)
    cached = list((tmp_path / "answerdesk" / "onnx").glob("*.onnx"))
    assert len(exports) == 1 and len(cached) == 1
    second = onnx_minilm.load_onnx_encoder(model_dir, threads=1)
    assert len(exports) == 1  # read from the cache, not exported again
    texts = TEXTS[:3]
    assert np.allclose(first.encode(texts, 8), second.encode(texts, 8))

    cached[0].write_bytes(b"not an onnx model")
    repaired = onnx_minilm.load_onnx_encoder(model_dir, threads=1)
    assert len(exports) == 2
    assert np.allclose(repaired.encode(texts, 8), first.encode(texts, 8))


def test_torch_serves_when_the_onnx_encoder_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, fresh_loader: None
) -> None:
    def unavailable(model_dir: Path, threads: int) -> None:
        raise ImportError("no onnx here")

    monkeypatch.setattr(onnx_minilm, "load_onnx_encoder", unavailable)
    embedder = LocalMiniLMEmbedder()
    assert embedder.backend == "torch"
    vectors = embedder.embed(TEXTS[:3])
    want = LocalMiniLMEmbedder(backend="torch").embed(TEXTS[:3])
    assert _cosines(vectors, want).min() >= 0.99999
