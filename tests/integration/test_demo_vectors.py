"""The demo corpus's shipped vectors (adapters/embeddings/known.py) are current: every text
a demo ingestion embeds is in the table, with the vector the packaged model gives it. When
this fails, the demo corpus or chunking changed: `python -m tests.support.demo_vectors`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adapters.embeddings.known import KnownVectors, digest, load_table
from adapters.embeddings.local import LocalMiniLMEmbedder
from bot.wiring import DEMO_VECTORS
from tests.support.demo_vectors import demo_passage_texts


class Counting:
    """An embedder that counts the texts it is asked to encode."""

    name, dimension = "counting", 3

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [[1.0, 0.0, 0.0] for _ in texts]


def test_the_table_covers_the_demo_corpus_with_the_models_vectors(demo_data_dir: Path) -> None:
    model = LocalMiniLMEmbedder()
    table = load_table(DEMO_VECTORS, model.name, model.dimension)
    texts = demo_passage_texts(demo_data_dir)
    assert len(texts) > 100
    missing = [text[:60] for text in texts if digest(text) not in table]
    assert not missing, "stale: run python -m tests.support.demo_vectors"
    sample = texts[:: max(1, len(texts) // 12)]
    fresh = np.asarray(model.embed(sample))
    stored = np.asarray([table[digest(text)] for text in sample])
    assert np.abs(fresh - stored).max() < 1e-5


def test_only_unknown_texts_are_encoded_and_only_by_the_same_model(
    demo_data_dir: Path, tmp_path: Path
) -> None:
    text = demo_passage_texts(demo_data_dir)[0]
    model = LocalMiniLMEmbedder()
    table = load_table(DEMO_VECTORS, model.name, model.dimension)
    vectors = KnownVectors(model, DEMO_VECTORS).embed([text, "a question nobody ingested"])
    assert vectors[0] == table[digest(text)]
    assert np.isclose(np.linalg.norm(vectors[1]), 1.0)  # encoded by the model
    # Another model's embedder gets nothing from the table: every text is encoded.
    counting = Counting()
    assert KnownVectors(counting, DEMO_VECTORS).embed([text]) == [[1.0, 0.0, 0.0]]
    assert counting.texts == [text]
    assert load_table(tmp_path / "absent.npz", model.name, model.dimension) == {}
