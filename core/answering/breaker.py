"""A per-tier circuit breaker, so a failing model tier is skipped instead of retried per request.

States:

* ``closed`` — calls go through; ``failure_threshold`` consecutive failures open the breaker.
* ``open`` — calls are refused until ``cooldown_s`` has passed since it opened.
* ``half_open`` — exactly one trial call is let through; concurrent callers are refused while
  it is in flight. Its success closes the breaker, its failure re-opens it for a new cooldown.

The clock is injectable so tests (and traces) are deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Per-tier breaker: closed → open after `failure_threshold` consecutive failures; open
    skips calls until `cooldown_s` has passed, then half-open lets exactly one trial call
    through (concurrent callers are still refused while the trial is in flight); a success
    closes it, a failure re-opens it for another cooldown."""

    def __init__(
        self,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1 (got {failure_threshold})")
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0 (got {cooldown_s})")
        self._threshold = failure_threshold
        self._cooldown = float(cooldown_s)
        self._clock = clock
        # asyncio use is single-threaded, but the lock is cheap and makes the breaker safe to
        # share with worker threads (e.g. a sync adapter run in an executor).
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started_at: float | None = None
        self._held_off = False

    @property
    def state(self) -> str:
        """ "closed" | "open" | "half_open" (an elapsed cooldown reads as half_open)."""
        with self._lock:
            self._advance(self._clock())
            return self._state

    def allow(self) -> bool:
        """May a call go through now? In half-open this claims the single trial call."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                return False
            if self._trial_in_flight(now):
                return False
            self._trial_started_at = now
            return True

    def record_success(self) -> None:
        # Any success is evidence the tier works again, including a late one from a call that
        # started before the breaker opened.
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._opened_at = None
            self._trial_started_at = None

    def record_failure(self) -> None:
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._failures += 1
            if self._state == HALF_OPEN or (
                self._state == CLOSED and self._failures >= self._threshold
            ):
                self._open(now)
            # Already open: a late failure from an earlier call must not extend the cooldown.

    def hold_off(self, seconds: float) -> None:
        """The provider said when to come back (429 with Retry-After): refuse calls until
        then, at most one cooldown, without counting a failure; then one trial call."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._state == OPEN or seconds <= 0:
                return  # already refusing: a rate limit must not extend the cooldown
            wait = min(float(seconds), self._cooldown)
            self._open(now - self._cooldown + wait)  # half-open once `wait` has passed
            self._held_off = True

    @property
    def held_off(self) -> bool:
        """Refusing because of the provider's Retry-After, not because of failures."""
        with self._lock:
            return self._held_off and self._state != CLOSED

    def snapshot(self) -> dict[str, Any]:
        """State for traces: state, consecutive_failures, opened_at, retry_in_s."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            retry_in: float | None = None
            if self._state == OPEN and self._opened_at is not None:
                retry_in = round(max(0.0, self._opened_at + self._cooldown - now), 3)
            return {
                "state": self._state,
                "consecutive_failures": self._failures,
                "opened_at": self._opened_at,
                "retry_in_s": retry_in,
            }

    def _open(self, now: float) -> None:
        self._held_off = False
        self._state = OPEN
        self._opened_at = now
        self._trial_started_at = None

    def _advance(self, now: float) -> None:
        """Lazy open → half_open transition once the cooldown has passed (caller holds lock)."""
        if (
            self._state == OPEN
            and self._opened_at is not None
            and now - self._opened_at >= self._cooldown
        ):
            self._state = HALF_OPEN
            self._trial_started_at = None

    def _trial_in_flight(self, now: float) -> bool:
        # A trial whose caller never reported back (cancelled task, crash) would otherwise
        # keep the breaker half-open and refusing forever; after another cooldown it counts
        # as abandoned and a new trial may go through.
        started = self._trial_started_at
        return started is not None and now - started < max(self._cooldown, 1e-9)
