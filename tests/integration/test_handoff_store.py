"""The handoff outbox on real databases: replicas claiming at once never share a row (SKIP
LOCKED on PostgreSQL, one writer at a time on SQLite), a crashed worker's lease runs out, a
graceful stop gives its leases back, one open ticket per conversation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import create_engine, upgrade_sync
from adapters.db.tickets import DbTicketQueue
from core.handoff.types import NewTicket, utcnow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        database = f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
    else:
        database = request.getfixturevalue("postgres_url")
    upgrade_sync(database)
    return database


def new(n: int, conversation: str | None = None) -> NewTicket:
    return NewTicket(
        request_id=f"r{n}",
        conversation_id=conversation,
        asker=None,
        question="q",
        reason="test",
        provider="jira",
        open_key=conversation or f"request:r{n}",
        origin=None,
        content={},
    )


async def _replicas(url: str, count: int) -> list[AsyncEngine]:
    return [create_engine(url) for _ in range(count)]


async def test_replicas_claiming_at_once_never_share_a_row(url: str) -> None:
    engines = await _replicas(url, 5)
    try:
        seed = DbTicketQueue(engines[0])
        for n in range(40):
            await seed.open(new(n), "nobody", lease_s=0)  # a lease that has run out
        claimed: list[list[int]] = [[] for _ in engines]

        async def replica(index: int) -> None:
            store = DbTicketQueue(engines[index])
            while rows := await store.claim_tickets(f"replica-{index}", 60, 3):
                claimed[index].extend(row.id for row in rows)
                await asyncio.sleep(0)

        await asyncio.gather(*(replica(i) for i in range(len(engines))))
    finally:
        for engine in engines:
            await engine.dispose()
    every = [ticket for ids in claimed for ticket in ids]
    assert sorted(every) == sorted(set(every)) and len(every) == 40
    assert sum(1 for ids in claimed if ids) >= 2  # the work was shared


async def test_leases_run_out_after_a_crash_and_come_back_on_a_graceful_stop(url: str) -> None:
    engine = create_engine(url)
    try:
        store = DbTicketQueue(engine)
        ticket, fresh = await store.open(new(1), "crashed", lease_s=60)
        assert fresh
        assert await store.claim_tickets("other", 60, 10) == []  # leased by its opener
        await store.retry_ticket(ticket.id, "HTTP 503", utcnow() - timedelta(seconds=1), False)
        [again] = await store.claim_tickets("worker-a", 60, 10)
        assert again.id == ticket.id and again.attempts == 1 and again.last_error == "HTTP 503"
        assert await store.claim_tickets("worker-b", 60, 10) == []
        await store.release("worker-a")
        [back] = await store.claim_tickets("worker-b", 60, 10)
        assert back.id == ticket.id
    finally:
        await engine.dispose()


async def test_one_open_ticket_per_conversation_until_it_is_closed(url: str) -> None:
    engines = await _replicas(url, 4)
    try:
        stores = [DbTicketQueue(engine) for engine in engines]
        opened = await asyncio.gather(
            *(store.open(new(n, "slack:T1:C1:1.1"), f"r{n}", 60) for n, store in enumerate(stores))
        )
        assert sum(1 for _, fresh in opened if fresh) == 1
        assert len({ticket.id for ticket, _ in opened}) == 1
        ticket = opened[0][0]
        assert await stores[0].close(ticket.id, utcnow()) is not None
        assert await stores[1].close(ticket.id, utcnow()) is None  # once
        reopened, fresh = await stores[2].open(new(9, "slack:T1:C1:1.1"), "r9", 60)
        assert fresh and reopened.id != ticket.id
    finally:
        for engine in engines:
            await engine.dispose()
