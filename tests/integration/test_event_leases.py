"""Leased event claims on a real database (SQLite and PostgreSQL): one holder at a time,
renewed while answering, taken over only once the lease ran out and the event is not done,
by exactly one of several replicas; the sweeper re-dispatches what a dead replica left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.conversations import SqlConversationStore
from adapters.db.engine import create_engine, upgrade
from core.conversation.leases import EventLeases, Lease, LeaseConfig, Sweeper

FAST = LeaseConfig(lease_s=1, sweep_s=0.1, max_attempts=2, database_wait_s=0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'claims.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    url = database_url
    await upgrade(url)
    built = create_engine(url)
    yield built
    await built.dispose()


def replicas(engine: AsyncEngine, n: int = 2) -> list[EventLeases]:
    return [EventLeases(SqlConversationStore(engine), FAST, f"replica-{i}") for i in range(n)]


async def test_one_holder_then_takeover_after_expiry_then_done(engine: AsyncEngine) -> None:
    one, two = replicas(engine)
    lease = await one.take("slack:event:E1", {"event": {"n": 1}})
    assert lease is not None and lease.attempt == 1
    await lease.note("1700.0001")  # the working message
    assert await two.take("slack:event:E1") is None  # held
    assert await one.take("slack:event:E1") is None  # a retry on the holder itself
    lease.abandon()  # the holder dies: no more renewals
    await asyncio.sleep(FAST.lease_s + 0.2)
    assert await two.expired(("slack:event:",)) == ["slack:event:E1"]
    taken = await asyncio.gather(*(leases.take("slack:event:E1") for leases in (one, two)))
    winners = [t for t in taken if t is not None]
    assert len(winners) == 1  # one replica takes it over
    winner = winners[0]
    assert winner.attempt == 2 and winner.payload == {"event": {"n": 1}}
    assert winner.resume_message == "1700.0001"
    await winner.complete()
    await asyncio.sleep(FAST.lease_s + 0.2)
    assert await two.expired(("slack:event:",)) == []
    assert await one.take("slack:event:E1") is None  # done: never again


async def test_renewal_keeps_a_long_answer_its_own(engine: AsyncEngine) -> None:
    one, two = replicas(engine)
    lease = await one.take("teams:activity:A1")
    assert lease is not None
    await asyncio.sleep(FAST.lease_s * 2.5)  # renewed every third of the lease meanwhile
    assert await two.take("teams:activity:A1") is None
    assert await lease.still_held()
    await lease.complete()


async def test_a_lost_lease_is_known_before_the_answer_is_shown(engine: AsyncEngine) -> None:
    one, two = replicas(engine)
    lease = await one.take("slack:event:E2")
    assert lease is not None
    lease.abandon()  # e.g. a renewal that could not reach the database in time
    await asyncio.sleep(FAST.lease_s + 0.2)
    other = await two.take("slack:event:E2")
    assert other is not None
    assert not await lease.still_held()  # so the first attempt shows nothing
    await other.complete()


async def test_the_sweeper_redispatches_what_a_dead_replica_left(engine: AsyncEngine) -> None:
    dead, alive = replicas(engine)
    lease = await dead.take("slack:event:E3", {"event": {"text": "hello"}})
    assert lease is not None
    lease.abandon()
    done: list[Lease] = []

    async def redispatch(taken: Lease) -> None:
        done.append(taken)
        await taken.complete()

    sweeper = Sweeper(alive, {"slack:event:": redispatch})
    sweeper.start()
    try:
        for _ in range(100):
            if done:
                break
            await asyncio.sleep(0.05)
    finally:
        await sweeper.close()
    assert [(d.key, d.payload, d.attempt) for d in done] == [
        ("slack:event:E3", {"event": {"text": "hello"}}, 2)
    ]


async def test_offers_stay_one_off_claims(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine)
    assert await store.claim("offer:slack:C1:1.0")
    assert not await store.claim("offer:slack:C1:1.0")
    (leases,) = replicas(engine, 1)
    await asyncio.sleep(0.1)
    assert await leases.expired(("offer:",)) == []  # no lease: never taken over
