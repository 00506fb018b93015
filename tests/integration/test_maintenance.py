"""`answerdesk maintenance purge --older-than AGE [--dry-run]`: old traces (with their
votes), conversation memory, cache entries (rows and vectors), closed tickets, posted-answer
records, Teams' message-to-answer records and one-off claims go; recent ones, open tickets
and the records an open ticket still needs stay. Run through the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from adapters.db.engine import create_engine, sessionmaker
from adapters.db.models import (
    CacheEntry,
    ConversationClaim,
    ConversationTurn,
    Feedback,
    PostedAnswerRow,
    SlackEvent,
    TeamsAnswerMessage,
    Ticket,
    TraceRow,
)
from bot.settings import Settings
from bot.wiring import build_services
from core.answering.types import Asker, Question
from tests.support.cli import assert_usage_error, run
from tests.support.seed import seed, trace

DAY = 86400
JORDAN = "jordan.kim@harborlight.example"


async def _history(settings: Settings) -> list[str]:
    """Real answers (cache entries with vectors, memory turns), then some of it aged."""
    services = await build_services(settings)
    try:
        for text in ("How long does a guest Wi-Fi pass last?", "How do I reset my Okta password?"):
            await services.answers.answer(Question(text, Asker(JORDAN), conversation_id="t1"))
        assert (await services.cache_store.stats())["entries"] >= 1
        await services.traces.flush()
    finally:
        await services.close()
    now = time.time()
    old = [trace(40 * DAY, now), trace(35 * DAY, now, mode="handoff")]
    recent = [trace(2 * DAY, now, mode="handoff")]
    await seed(
        settings.db_url,
        old + recent,
        votes={old[0]["request_id"]: [-1], recent[0]["request_id"]: [1]},
        tickets={old[1]["request_id"]: 600.0, recent[0]["request_id"]: None},
    )
    engine = create_engine(settings.db_url)
    ancient = datetime.now(UTC) - timedelta(days=45)
    async with sessionmaker(engine)() as session, session.begin():
        # Where answers were posted, 45 days ago: the closed ticket's and another one go; the
        # open ticket's stays (an agent's reply must still reach its thread).
        for request_id in (old[1]["request_id"], recent[0]["request_id"], "gone-request"):
            session.add(
                PostedAnswerRow(
                    request_id=request_id,
                    platform="slack",
                    tenant_id="T1",
                    conversation_id="C1",
                    thread_id="1.0",
                    asker_id="U1",
                    question="q",
                    created_at=ancient,
                )
            )
        session.add(ConversationClaim(claim_key="offer:old", claimed_at=ancient))
        session.add(ConversationClaim(claim_key="offer:new", claimed_at=datetime.now(UTC)))
        session.add(SlackEvent(event_id="Ev-old", received_at=ancient))
        for key, when in (("a" * 64, ancient), ("b" * 64, datetime.now(UTC))):
            session.add(TeamsAnswerMessage(key=key, request_id="r", created_at=when))
        # The first real answer, its memory turn and its cache entry are 45 days old.
        first = (
            await session.scalars(select(CacheEntry.id).order_by(CacheEntry.created_at))
        ).first()
        await session.execute(
            update(CacheEntry).where(CacheEntry.id == first).values(created_at=ancient)
        )
        oldest_turn = (
            await session.scalars(select(ConversationTurn.id).order_by(ConversationTurn.id))
        ).first()
        await session.execute(
            update(ConversationTurn)
            .where(ConversationTurn.id == oldest_turn)
            .values(created_at=ancient)
        )
    await engine.dispose()
    return [first]


async def _counts(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.db_url)
    try:
        async with sessionmaker(engine)() as session:
            return {
                name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for name, model in {
                    "traces": TraceRow,
                    "votes": Feedback,
                    "turns": ConversationTurn,
                    "cache": CacheEntry,
                    "tickets": Ticket,
                    "posted": PostedAnswerRow,
                    "claims": ConversationClaim,
                    "events": SlackEvent,
                    "teams_messages": TeamsAnswerMessage,
                }.items()
            }
    finally:
        await engine.dispose()


def test_purge_dry_run_then_for_real(demo_settings: Settings, tmp_path: Path) -> None:
    [old_entry] = asyncio.run(_history(demo_settings))
    before = asyncio.run(_counts(demo_settings))
    env = {"ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)}
    dry = run(
        tmp_path, "maintenance", "purge", "--older-than", "30d", "--dry-run", "--json", env=env
    )
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    assert report["removed"] == {
        "traces": 2,
        "votes": 1,
        "memory_turns": 1,
        "cache_entries": 1,
        "closed_tickets": 1,
        "posted_answers": 2,
        "claims": 1,
        "event_ids": 1,
        "teams_messages": 1,
    }
    assert asyncio.run(_counts(demo_settings)) == before  # nothing deleted

    done = run(tmp_path, "maintenance", "purge", "--older-than", "30d", env=env)
    assert done.returncode == 0, done.stderr
    assert "removed 2 traces, 1 votes on them, 1 conversation memory turns" in done.stdout
    after = asyncio.run(_counts(demo_settings))
    assert after == {
        "traces": before["traces"] - 2,
        "votes": before["votes"] - 1,
        "turns": before["turns"] - 1,
        "cache": before["cache"] - 1,
        "tickets": before["tickets"] - 1,  # the open ticket stays
        "posted": before["posted"] - 2,  # the open ticket's record stays
        "claims": before["claims"] - 1,
        "events": before["events"] - 1,
        "teams_messages": before["teams_messages"] - 1,
    }

    async def vector_left() -> bool:
        services = await build_services(demo_settings)
        try:
            got = services.cache_store._collection.get(ids=[old_entry])
            return bool(got["ids"])
        finally:
            await services.close()

    assert asyncio.run(vector_left()) is False  # the entry's vector went with its row
    again = run(tmp_path, "maintenance", "purge", "--older-than", "30d", "--json", env=env)
    assert set(json.loads(again.stdout)["removed"].values()) == {0}


def test_bad_age(tmp_path: Path) -> None:
    for age in ("thirty days", "0d", "-5d"):
        done = run(tmp_path, "maintenance", "purge", "--older-than", age)
        assert_usage_error(done, "--older-than")
    assert_usage_error(run(tmp_path, "maintenance", "purge"), "--older-than")
