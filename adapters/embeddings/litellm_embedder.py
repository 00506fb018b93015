"""Embeddings served by any provider litellm knows (`embeddings.model` in the config)."""

from __future__ import annotations

import math
from collections.abc import Sequence


class LiteLLMEmbedder:
    def __init__(
        self,
        model: str,
        *,
        dimension: int,
        api_base: str | None = None,
        api_key: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self._model = model
        self._dimension = dimension
        self._api_base = api_base
        self._api_key = api_key
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        litellm = _litellm()
        out: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            response = litellm.embedding(
                model=self._model,
                input=list(texts[start : start + self._batch_size]),
                api_base=self._api_base,
                api_key=self._api_key,
            )
            for item in sorted(response.data, key=lambda d: d["index"]):
                out.append(_unit(item["embedding"]))
        for vector in out:
            if len(vector) != self._dimension:
                raise ValueError(
                    f"embedding model {self._model} returned {len(vector)} dimensions, "
                    f"configured embeddings.dimension is {self._dimension}"
                )
        return out


def _litellm():  # type: ignore[no-untyped-def]
    # Imported on first use: the local embedder needs no litellm at all.
    from adapters.llm.litellm_client import litellm

    return litellm


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
