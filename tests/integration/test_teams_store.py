"""Teams state shared by replicas: the activity claim and stored conversation references,
on SQLite and PostgreSQL, with two engines standing for two replicas."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.db.engine import create_engine, upgrade
from adapters.teams.store import TeamsStore

REFERENCE = {
    "activityId": "1700000000001",
    "user": {"id": "29:priya", "aadObjectId": "a4e2c9f1-0d5b-4c87-8e3a-6f1b2d9c0e58"},
    "bot": {"id": "28:bot"},
    "conversation": {"id": "19:" + "x" * 150 + "@thread.tacv2;messageid=1", "tenantId": "t"},
    "channelId": "msteams",
    "serviceUrl": "https://smba.trafficmanager.net/emea/",
}


async def _replicas(url: str) -> None:
    await upgrade(url)
    engines = [create_engine(url), create_engine(url)]
    try:
        first, second = (TeamsStore(engine) for engine in engines)
        # The same activity reaching both replicas at once: exactly one takes it.
        taken = await asyncio.gather(
            *(store.claim("t", "19:conv", f"act-{n // 2}") for n, store in
              enumerate([first, second, first, second]))
        )  # fmt: skip
        assert sorted(taken) == [False, False, True, True]
        assert not await second.claim("t", "19:conv", "act-0")
        keys = await asyncio.gather(
            *(store.save_reference("t", REFERENCE) for store in (first, second, first, second))
        )
        key = keys[0]
        assert set(keys) == {key}
        assert await second.reference(key) == REFERENCE
        assert await second.save_reference("t", {**REFERENCE, "activityId": "2"}) == key
        assert (await first.reference(key))["activityId"] == "2"
        assert await first.reference("0" * 64) is None
    finally:
        for engine in engines:
            await engine.dispose()


async def test_claims_and_references_on_sqlite(tmp_path: Path) -> None:
    await _replicas(f"sqlite+aiosqlite:///{tmp_path / 'teams.db'}")


@pytest.mark.postgres
async def test_claims_and_references_on_postgres(postgres_url: str) -> None:
    await _replicas(postgres_url)
