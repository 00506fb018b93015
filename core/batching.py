"""Micro-batching: many concurrent single-text embeddings become one batched call.

Encoding 16 short questions at once costs about a quarter of encoding them one by one on a
CPU, and under load requests arrive together anyway. A call waits at most `max_wait_s` for
company; an idle service pays no delay beyond that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.ports import Embedder


class BatchingEncoder:
    def __init__(
        self, embedder: Embedder, *, max_batch: int = 32, max_wait_s: float = 0.002
    ) -> None:
        self._embedder = embedder
        self._max_batch = max_batch
        self._max_wait = max_wait_s
        self._pending: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._busy = asyncio.Lock()

    async def encode(self, text: str) -> list[float]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[float]] = loop.create_future()
        self._pending.append((text, future))
        if len(self._pending) >= self._max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_wait, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: Sequence[tuple[str, asyncio.Future[list[float]]]]) -> None:
        async with self._busy:  # one batch on the CPU at a time; the next one keeps filling
            try:
                vectors = await asyncio.to_thread(self._embedder.embed, [t for t, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
        for (_, future), vector in zip(batch, vectors, strict=True):
            if not future.done():
                future.set_result(vector)
