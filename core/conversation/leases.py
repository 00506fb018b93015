"""Events answered exactly once across replicas that may die: leased claims.

A replica that takes an event (a Slack event, a Teams activity) holds its claim for a lease
it renews while answering, and records completion when the answer is done. A redelivery or
the same event on another replica stops at the claim; but when the holder dies mid-answer
its lease runs out, and the event is taken over: by a redelivery, or by the
:class:`Sweeper` every replica runs, which re-dispatches expired claims from their stored
payload. The working message the dead replica posted is noted on the claim, so the new
attempt finishes in it and the user sees one answer."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog

from core.conversation.durable import durably
from core.tasks import cancel

log = structlog.get_logger()
RETRY_RENEW_S = 0.5  # a renewal the database refused is tried again this soon


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    lease_s: float = 30.0  # how long a claim holds without renewal (a dead replica's ends)
    sweep_s: float = 5.0  # how often each replica looks for claims whose lease ran out
    max_attempts: int = 3  # takes of one event before it is given up (logged)
    database_wait_s: float = 60.0  # how long a claim waits for a database that is down

    @property
    def renew_s(self) -> float:
        return self.lease_s / 3


@dataclass(frozen=True, slots=True)
class Taken:
    """A claim just taken: its payload, the message a previous attempt posted (None on the
    first), and which attempt this is."""

    key: str
    payload: Mapping[str, Any] | None
    note: str | None
    attempt: int
    # When (time.monotonic) the write that took it was sent: its lease runs at least
    # lease_s from then. Set by EventLeases.take.
    sent_at: float = 0.0


class Claims(Protocol):
    """Leased claims in the shared database (adapters/db/conversations.py)."""

    async def take(
        self, key: str, owner: str, lease_s: float, payload: Mapping[str, Any] | None
    ) -> Taken | None:
        """Claim ``key`` for ``owner``: new, or taken over when its lease ran out before it
        was completed (or ``owner`` holds it already: a claim whose commit was not
        acknowledged); None when another holder has it or it is done."""
        ...

    async def renew(self, key: str, owner: str, lease_s: float, note: str | None) -> bool:
        """Extend the lease (and note the message shown); False when it was lost."""
        ...

    async def complete(self, key: str, owner: str) -> None: ...

    async def expired(self, prefixes: tuple[str, ...], max_attempts: int, limit: int) -> list[str]:
        """Keys under ``prefixes`` whose lease ran out uncompleted, taken fewer than
        ``max_attempts`` times."""
        ...


def replica_id() -> str:
    """This process among the replicas: host, pid and a random part."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One taken claim, renewed in the background until it is completed or abandoned.

    Every write that extends the lease (the take, a note, a renewal) is remembered by when
    it was sent (``_confirmed_at``, this process's monotonic clock, so earlier than the
    database's ``lease_until`` minus ``lease_s``). The lease is renewed only when it is at
    risk: a third of ``lease_s`` after the last such write, not on every step of the answer;
    and :meth:`still_held` asks the database only when no write confirmed the lease in that
    time (with the defaults, at least 20 of its 30 s are then left: no replica can have
    taken it over)."""

    def __init__(self, leases: EventLeases, taken: Taken) -> None:
        self._leases = leases
        self.key = taken.key
        self.payload = taken.payload
        self.resume_message = taken.note  # a previous attempt's working message
        self.attempt = taken.attempt
        self._note: str | None = taken.note
        # Unknown when it was taken (no EventLeases.take): renewed at once.
        self._confirmed_at = taken.sent_at or float("-inf")
        self.lost = False
        leases.active.add(self.key)
        self._renewing: asyncio.Task[None] | None = asyncio.create_task(self._renew())
        self._settled = False
        self.held = False

    def hold(self) -> None:
        """Work that outlives the event's handler (an answer going on after the platform's
        reply window) completes the lease itself."""
        self.held = True

    async def note(self, message_id: str | None) -> None:
        """The message this attempt shows its answer in (a takeover finishes there)."""
        if message_id is None or message_id == self._note:
            return
        self._note = message_id
        await self._extend(message_id)

    async def still_held(self) -> bool:
        """Held for a while yet: this attempt may show its answer. False when another replica
        took the event over (this replica's lease ran out, e.g. while the database was
        down) or the database cannot say: showing nothing is then the safe side, since the
        event is answered by whoever holds it, or taken over again. The lease is renewed
        first, unless a write confirmed it less than a third of ``lease_s`` ago: nobody can
        take it over before it runs out, so no database round trip is needed."""
        if self.lost:
            return False
        if not self._settled and time.monotonic() - self._confirmed_at < self._renew_s:
            return True
        try:
            held = await durably(
                lambda: self._extend(self._note),
                "event claim",
                self._leases.config.database_wait_s,
            )
        except Exception:
            held = False
        self.lost = not held
        return held

    async def complete(self) -> None:
        """The answer is done: nobody answers this event again."""
        if self._settled:
            return
        self._stop()
        await durably(
            lambda: self._leases.complete(self.key),
            "event completion",
            self._leases.config.database_wait_s,
        )

    def abandon(self) -> None:
        """Stop renewing: the lease runs out and another attempt takes the event."""
        if not self._settled:
            self._stop()
            log.warning("event claim abandoned", key=self.key, attempt=self.attempt)

    @property
    def _renew_s(self) -> float:
        return self._leases.config.renew_s

    async def _extend(self, note: str | None) -> bool:
        """Renew the lease (noting ``note``); remembers when a renewal that held was sent."""
        sent_at = time.monotonic()
        held = await self._leases.renew(self.key, note)
        if held:
            self._confirmed_at = max(self._confirmed_at, sent_at)
        return held

    def _stop(self) -> None:
        self._settled = True
        self._leases.active.discard(self.key)
        if self._renewing is not None:
            self._renewing.cancel()
            self._renewing = None

    async def _renew(self) -> None:
        """A third of the lease after the last write that extended it (a note resets it)."""
        retry = False
        while True:
            if retry:
                await asyncio.sleep(min(RETRY_RENEW_S, self._renew_s))
            else:
                due = self._confirmed_at + self._renew_s
                while (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                    due = self._confirmed_at + self._renew_s  # a note may have renewed it
            try:
                if not await self._extend(self._note):
                    log.warning("event claim lost", key=self.key)
                    self.lost = True
                    return
                retry = False
            except Exception as exc:  # the database is down: renew as soon as it is back
                log.warning("event claim not renewed", key=self.key, error=type(exc).__name__)
                retry = True


class EventLeases:
    """Taking, renewing and completing event claims for this replica."""

    def __init__(self, claims: Claims, config: LeaseConfig | None = None, owner: str = "") -> None:
        self._claims = claims
        self.config = config or LeaseConfig()
        self.owner = owner or replica_id()
        self.active: set[str] = set()  # keys this replica is answering now
        self._taking: set[str] = set()

    async def take(self, key: str, payload: Mapping[str, Any] | None = None) -> Lease | None:
        """The event's lease, or None when it is someone else's or done. Waits (bounded)
        for a database that is down: an event arriving during a restart is answered after."""
        if key in self.active or key in self._taking:
            return None  # a retry of an event this replica is answering already
        self._taking.add(key)
        sent_at = 0.0

        async def take() -> Taken | None:
            nonlocal sent_at
            sent_at = time.monotonic()  # the lease runs lease_s from (after) this write
            return await self._claims.take(key, self.owner, self.config.lease_s, payload)

        try:
            taken = await durably(take, "event claim", self.config.database_wait_s)
        finally:
            self._taking.discard(key)
        if taken is None:
            return None
        taken = replace(taken, sent_at=sent_at)
        if taken.attempt >= self.config.max_attempts > 1:
            # Nobody sweeps it again: if this attempt dies too, the event stays unanswered.
            log.error("event taken over for its last attempt", key=key, attempt=taken.attempt)
        elif taken.attempt > 1:
            log.info("event taken over", key=key, attempt=taken.attempt)
        return Lease(self, taken)

    async def renew(self, key: str, note: str | None) -> bool:
        return await self._claims.renew(key, self.owner, self.config.lease_s, note)

    async def complete(self, key: str) -> None:
        await self._claims.complete(key, self.owner)

    async def expired(self, prefixes: tuple[str, ...], limit: int = 20) -> list[str]:
        return await self._claims.expired(prefixes, self.config.max_attempts, limit)


# The lease of the event being handled: set where the event is claimed, read where the
# answer is written (a platform SDK sits between the two; tasks it starts inherit it).
_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar(
    "answerdesk_event_lease", default=None
)


def current_lease() -> Lease | None:
    return _current.get()


@contextlib.contextmanager
def handling(lease: Lease | None) -> Any:
    token = _current.set(lease)
    try:
        yield lease
    finally:
        _current.reset(token)


Redispatch = Callable[[Lease], Awaitable[None]]


class Sweeper:
    """On every replica: claims whose lease ran out before their answer was done are taken
    over and handed to the platform's re-dispatch (by key prefix)."""

    def __init__(self, leases: EventLeases, handlers: Mapping[str, Redispatch]) -> None:
        self._leases = leases
        self._handlers = dict(handlers)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None and self._handlers:
            self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None

    async def sweep(self) -> int:
        """One round; the number of events taken over."""
        taken = 0
        for key in await self._leases.expired(tuple(self._handlers)):
            if key in self._leases.active:
                continue  # still being answered here (its renewal waits for the database)
            lease = await self._leases.take(key)
            if lease is None:
                continue  # another replica was quicker
            handler = next(h for prefix, h in self._handlers.items() if key.startswith(prefix))
            task = asyncio.create_task(self._run(handler, lease))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            taken += 1
        return taken

    async def _run(self, handler: Redispatch, lease: Lease) -> None:
        try:
            await handler(lease)
        except Exception:
            log.exception("event re-dispatch failed", key=lease.key)
            lease.abandon()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._leases.config.sweep_s)
            try:
                await self.sweep()
            except Exception as exc:  # the database is down: next round
                log.warning("claim sweep failed", error=type(exc).__name__)
