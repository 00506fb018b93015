"""How many answers one replica works on at once, how many may wait, and for how long.

An answer with a model spends most of its time waiting on the model, so a replica answers
several at once (``max_concurrent``); the rest wait their turn without using the CPU. The
wait is bounded twice: at most ``max_waiting`` questions wait, and a question that would
wait longer than ``max_wait_s`` is not queued at all. Either way the asker is told at once
(the conversation layer posts the busy notice) rather than answered minutes later. A
question already waiting whose turn still has not come after ``max_wait_s`` (the estimate
was too hopeful: the model slowed down) is let go the same way, so nobody waits silently
past the limit.

The wait a new question would have is estimated from how long recent answers held their
slot: with every slot busy, the n-th in line gets one after about n × (answer time) /
``max_concurrent``. The same estimate says when the replica is saturated (a new question
would be refused), which ``/readyz`` reports so a load balancer can send questions to
another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

# Until the first answer finishes, an answer is assumed to take this long.
_PRIOR_ANSWER_S = 10.0
_SMOOTHING = 0.2  # weight of the newest answer time in the running estimate


@dataclass(frozen=True, slots=True)
class QueueConfig:
    max_concurrent: int = 8
    max_waiting: int = 200
    max_wait_s: float = 60.0


class BusyReason(StrEnum):
    FULL = "queue_full"  # max_waiting questions wait already
    WAIT = "wait_too_long"  # the estimated wait is over max_wait_s
    WAITED = "waited_too_long"  # queued, but no slot within max_wait_s


class Busy(Exception):
    """The replica cannot answer this question in time; ``retry_after_s`` is when the
    questions waiting now should be answered."""

    def __init__(self, reason: BusyReason, retry_after_s: float) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class QueueState:
    """A reading of the queue (for /metrics and /readyz)."""

    waiting: int
    in_flight: int
    max_concurrent: int
    max_waiting: int
    max_wait_s: float
    estimated_wait_s: float  # what a question arriving now would wait
    answer_s: float  # the running estimate of how long an answer holds its slot

    @property
    def saturated(self) -> BusyReason | None:
        """Why a question arriving now would be refused; None when it would be taken."""
        if self.waiting >= self.max_waiting:
            return BusyReason.FULL
        if self.estimated_wait_s > self.max_wait_s:
            return BusyReason.WAIT
        return None


class QueueObserver(Protocol):
    """Told of each admission's wait and each refusal (the metrics implement it)."""

    def waited(self, seconds: float) -> None: ...

    def refused(self, reason: BusyReason) -> None: ...


class AnswerQueue:
    """One per replica, shared by every chat platform (their questions compete for the
    same CPU and model capacity)."""

    def __init__(
        self,
        config: QueueConfig | None = None,
        observer: QueueObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or QueueConfig()
        self.observer = observer
        self._clock = clock
        self._free = self.config.max_concurrent
        self._waiters: list[asyncio.Future[None]] = []  # FIFO
        self._answer_s: float | None = None

    def state(self) -> QueueState:
        c = self.config
        return QueueState(
            waiting=len(self._waiters),
            in_flight=c.max_concurrent - self._free,
            max_concurrent=c.max_concurrent,
            max_waiting=c.max_waiting,
            max_wait_s=c.max_wait_s,
            estimated_wait_s=self._estimate(len(self._waiters) + 1),
            answer_s=self._answer_s if self._answer_s is not None else _PRIOR_ANSWER_S,
        )

    def _estimate(self, place: int) -> float:
        """The wait of the ``place``-th in line (1: the next) while every slot is busy."""
        if self._free > 0 and not self._waiters:
            return 0.0
        answer_s = self._answer_s if self._answer_s is not None else _PRIOR_ANSWER_S
        return place * answer_s / self.config.max_concurrent

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one of the replica's answer slots; yields how long the wait was. Raises
        :class:`Busy` at once when the question would wait too long, or when it waited
        ``max_wait_s`` without getting a slot."""
        started = self._clock()
        await self._acquire()
        waited = self._clock() - started
        if self.observer is not None:
            self.observer.waited(waited)
        try:
            yield waited
        finally:
            self._release(self._clock() - started - waited)

    async def _acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        reason = self.state().saturated
        if reason is not None:
            self._refuse(reason)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.config.max_wait_s)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the slot came as the time ran out: keep it
            waiter.cancel()
            self._waiters.remove(waiter)
            self._refuse(BusyReason.WAITED)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._hand_on()  # given a slot, then cancelled: pass it on
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
            raise

    def _refuse(self, reason: BusyReason) -> None:
        if self.observer is not None:
            self.observer.refused(reason)
        # By then the questions waiting now have had their answers.
        raise Busy(reason, self._estimate(len(self._waiters) + 1) or self.state().answer_s)

    def _release(self, held_s: float) -> None:
        if self._answer_s is None:
            self._answer_s = held_s
        else:
            self._answer_s += _SMOOTHING * (held_s - self._answer_s)
        self._hand_on()

    def _hand_on(self) -> None:
        """A slot is free: to the first in line, else back to the pool."""
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


def busy_text(busy: Busy) -> str:
    """What the asker reads: the service is busy, the question is not queued, and when to
    ask again (when the questions waiting now should have had their answers)."""
    minutes = max(1, math.ceil(busy.retry_after_s / 60))
    when = "in a minute" if minutes == 1 else f"in about {minutes} minutes"
    return (
        "I'm answering a lot of questions right now and can't get to yours soon enough, "
        f"so I've set it aside rather than keep you waiting. Please ask again {when}."
    )
