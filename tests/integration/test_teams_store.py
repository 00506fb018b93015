"""Teams state shared by replicas: activity claims (the conversation layer's shared claim),
stored conversation references and which answer each bot message shows, on SQLite and
PostgreSQL, with two engines standing for two replicas."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.db.conversations import SqlConversationStore
from adapters.db.engine import create_engine, upgrade
from adapters.teams.endpoint import activity_key
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
        claims = [SqlConversationStore(engine) for engine in engines]
        # The same activity reaching both replicas at once: exactly one takes it. Teams ids
        # are long; the key stays short.
        long_conversation = REFERENCE["conversation"]["id"]
        keys = [activity_key("t", long_conversation, f"act-{n}") for n in range(2)]
        assert all(len(key) < 100 for key in keys)
        taken = await asyncio.gather(*(claims[n % 2].claim(keys[n // 2]) for n in range(4)))
        assert sorted(taken) == [False, False, True, True]
        assert not await claims[1].claim(keys[0])
        keys = await asyncio.gather(
            *(store.save_reference("t", REFERENCE) for store in (first, second, first, second))
        )
        key = keys[0]
        assert set(keys) == {key}
        assert await second.reference("t", long_conversation) == REFERENCE
        assert await second.save_reference("t", {**REFERENCE, "activityId": "2"}) == key
        assert (await first.reference("t", long_conversation))["activityId"] == "2"
        assert await first.reference("t", "19:never-seen") is None
        # The message an answer went out as, found again by the message Teams' feedback names
        # (with or without the channel thread in the conversation id).
        await first.remember_answer("t", long_conversation, "1700000000099", "req0001")
        assert await second.answer_shown_in("t", long_conversation, "1700000000099") == "req0001"
        channel = long_conversation.split(";")[0]
        assert await second.answer_shown_in("t", channel, "1700000000099") == "req0001"
        assert await second.answer_shown_in("t", long_conversation, "1700000000100") is None
    finally:
        for engine in engines:
            await engine.dispose()


async def test_claims_and_references_on_sqlite(tmp_path: Path) -> None:
    await _replicas(f"sqlite+aiosqlite:///{tmp_path / 'teams.db'}")


@pytest.mark.postgres
async def test_claims_and_references_on_postgres(postgres_url: str) -> None:
    await _replicas(postgres_url)
