"""MicroBatcher: concurrent calls share one batched call, and each caller gets its own result."""

from __future__ import annotations

import asyncio

import pytest

from core.batching import BatchingEncoder, MicroBatcher


async def test_concurrent_calls_share_one_batch_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    def square(items: list[int]) -> list[int]:
        batches.append(items)
        return [i * i for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(square, max_wait_s=0.05)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * i for i in range(10)]
    assert batches == [list(range(10))]


async def test_a_full_batch_goes_at_once_and_the_rest_follows() -> None:
    batches: list[list[int]] = []

    def same(items: list[int]) -> list[int]:
        batches.append(items)
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(same, max_batch=4, max_wait_s=0.05)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(10))) == list(range(10))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))


async def test_a_failing_batch_fails_every_caller_in_it() -> None:
    def broken(items: list[int]) -> list[int]:
        raise ValueError("index down")

    batcher: MicroBatcher[int, int] = MicroBatcher(broken)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    # ...and the batcher still serves the next calls.
    ok: MicroBatcher[int, int] = MicroBatcher(lambda items: items)
    assert await ok.submit(7) == 7


async def test_a_batch_returning_the_wrong_number_of_results_is_an_error() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items[:-1])
    with pytest.raises(RuntimeError, match="returned"):
        await asyncio.gather(batcher.submit(1), batcher.submit(2))


async def test_batching_encoder_routes_vectors_to_their_texts() -> None:
    class Lengths:
        name = "lengths"
        dimension = 1

        def embed(self, texts: list[str]) -> list[list[float]]:
            return [[float(len(t))] for t in texts]

    encoder = BatchingEncoder(Lengths())
    texts = ["a", "bbb", "cc", ""]
    assert await asyncio.gather(*(encoder.encode(t) for t in texts)) == [
        [1.0],
        [3.0],
        [2.0],
        [0.0],
    ]
