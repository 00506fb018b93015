"""The delivery worker: one per replica, started with the service. Every round claims what
is due (tickets, then chat messages) and delivers it; between rounds it sleeps until woken
(something was queued here) or `poll_s` passes (something was queued elsewhere, or a
backoff ended). Leases make a crashed replica's rows due again; a graceful stop gives its
leases back at once."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from core.handoff.service import Handoffs
from core.tasks import cancel

log = structlog.get_logger()


class DeliveryWorker:
    def __init__(self, handoffs: Handoffs) -> None:
        self._handoffs = handoffs
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._handoffs.wake = self._wake.set
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        self._handoffs.wake = lambda: None
        try:
            await self._handoffs.store.release(self._handoffs.owner)
        except Exception as exc:  # the leases run out on their own
            log.warning("could not release delivery leases", error=type(exc).__name__)
        await self._handoffs.system.close()

    async def _run(self) -> None:
        poll = self._handoffs.config.poll_s
        while True:
            self._wake.clear()
            try:
                busy = await self._handoffs.deliver_due()
            except Exception as exc:  # the database is down: try again next round
                log.warning("delivery round failed", error=type(exc).__name__)
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)
