"""The answer queue's rules, with a hand-driven clock: slots, the bound on waiting, the
estimated wait, a wait that runs out, and a cancelled waiter giving its place back."""

from __future__ import annotations

import asyncio

import pytest

from core.conversation.queue import AnswerQueue, Busy, BusyReason, QueueConfig, busy_text


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Observer:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.refusals: list[BusyReason] = []

    def waited(self, seconds: float) -> None:
        self.waits.append(seconds)

    def refused(self, reason: BusyReason) -> None:
        self.refusals.append(reason)


async def hold(queue: AnswerQueue, release: asyncio.Event, log: list[str], name: str) -> None:
    async with queue.slot():
        log.append(name)
        await release.wait()


async def test_slots_then_a_bounded_line_then_refusals() -> None:
    observer = Observer()
    queue = AnswerQueue(QueueConfig(max_concurrent=2, max_waiting=2, max_wait_s=1000), observer)
    release, log = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(queue, release, log, f"q{n}")) for n in range(4)]
    await asyncio.sleep(0)
    state = queue.state()
    assert (state.in_flight, state.waiting) == (2, 2) and log == ["q0", "q1"]
    assert state.saturated is BusyReason.FULL
    with pytest.raises(Busy) as refused:
        async with queue.slot():
            pass
    assert refused.value.reason is BusyReason.FULL and refused.value.retry_after_s > 0
    release.set()
    await asyncio.gather(*tasks)
    assert log == ["q0", "q1", "q2", "q3"]  # first come, first served
    assert queue.state().in_flight == 0 and queue.state().saturated is None
    assert observer.refusals == [BusyReason.FULL] and len(observer.waits) == 4


async def test_the_estimated_wait_refuses_at_once_when_over_the_limit() -> None:
    clock = Clock()
    queue = AnswerQueue(QueueConfig(max_concurrent=2, max_waiting=100, max_wait_s=5), None, clock)
    # Teach it that an answer takes 4 s.
    async with queue.slot():
        clock.now += 4
    assert queue.state().answer_s == 4
    release, log = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(queue, release, log, f"q{n}")) for n in range(4)]
    await asyncio.sleep(0)
    # Two answering, two waiting: the next would wait ~3 × 4 s / 2 = 6 s > 5 s.
    state = queue.state()
    assert state.waiting == 2 and state.estimated_wait_s == pytest.approx(6)
    assert state.saturated is BusyReason.WAIT
    with pytest.raises(Busy) as refused:
        async with queue.slot():
            pass
    assert refused.value.reason is BusyReason.WAIT
    assert "Please ask again in a minute" in busy_text(refused.value)
    release.set()
    await asyncio.gather(*tasks)


async def test_a_question_that_waited_the_limit_is_let_go() -> None:
    queue = AnswerQueue(QueueConfig(max_concurrent=1, max_waiting=10, max_wait_s=0.05))
    release, log = asyncio.Event(), []
    first = asyncio.create_task(hold(queue, release, log, "first"))
    await asyncio.sleep(0)
    queue._answer_s = 0.001  # the estimate says it will be quick; it will not
    with pytest.raises(Busy) as refused:
        async with queue.slot():
            pass
    assert refused.value.reason is BusyReason.WAITED
    assert queue.state().waiting == 0
    release.set()
    await first
    assert queue.state().in_flight == 0


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    queue = AnswerQueue(QueueConfig(max_concurrent=1, max_waiting=10, max_wait_s=100))
    release, log = asyncio.Event(), []
    first = asyncio.create_task(hold(queue, release, log, "first"))
    second = asyncio.create_task(hold(queue, release, log, "second"))
    third = asyncio.create_task(hold(queue, release, log, "third"))
    await asyncio.sleep(0)
    second.cancel()
    for _ in range(5):  # the cancellation goes through wait_for and the shield
        await asyncio.sleep(0)
    assert queue.state().waiting == 1
    release.set()
    await asyncio.gather(first, third)
    assert log == ["first", "third"] and queue.state().in_flight == 0


def test_busy_text_says_when_to_ask_again() -> None:
    assert "in about 3 minutes" in busy_text(Busy(BusyReason.WAIT, 150))
    assert "in a minute" in busy_text(Busy(BusyReason.FULL, 5))
