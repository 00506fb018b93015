"""Micro-batching: many concurrent single calls become one batched call in a worker thread.

Encoding 16 short questions at once costs far less than encoding them one by one, a vector
query for 16 questions costs a fraction of 16 queries, and under load requests arrive
together anyway. A call waits at most `max_wait_s` for company; an idle service pays no
delay beyond that. One batch runs at a time; the next one fills meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from core.ports import Embedder

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """`run` takes a list of items and returns one result per item, in order (blocking)."""

    def __init__(
        self,
        run: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.002,
    ) -> None:
        self._run_batch = run
        self._max_batch = max_batch
        self._max_wait = max_wait_s
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._busy = asyncio.Lock()

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
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

    async def _run(self, batch: Sequence[tuple[T, asyncio.Future[R]]]) -> None:
        async with self._busy:  # one batch in the worker at a time; the next one keeps filling
            try:
                results = await asyncio.to_thread(self._run_batch, [item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} returned {len(results)} results")
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


class BatchingEncoder:
    """Query embeddings through one micro-batcher over `embedder.embed`."""

    def __init__(
        self, embedder: Embedder, *, max_batch: int = 32, max_wait_s: float = 0.002
    ) -> None:
        self._batcher: MicroBatcher[str, list[float]] = MicroBatcher(
            embedder.embed, max_batch=max_batch, max_wait_s=max_wait_s
        )

    async def encode(self, text: str) -> list[float]:
        return await self._batcher.submit(text)
