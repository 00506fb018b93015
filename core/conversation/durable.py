"""Writes a conversation must not lose, made through a database restart or failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

log = structlog.get_logger()
T = TypeVar("T")
FIRST_DELAY_S = 0.2
MAX_DELAY_S = 2.0


async def durably(operation: Callable[[], Awaitable[T]], what: str, wait_s: float) -> T:
    """Run ``operation`` (idempotent: a claim, a vote, a record, a ticket), retried with
    backoff while the database cannot be reached, for up to ``wait_s``; then its error is
    raised. Replicas wait for the database instead of dropping what people did meanwhile."""
    deadline = time.monotonic() + wait_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return await operation()
        except Exception as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable, retrying", what=what, error=type(exc).__name__)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_S)
