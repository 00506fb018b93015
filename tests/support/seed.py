"""Synthetic history for operations tests: traces as the answer service writes them (through
the real trace writer), votes and tickets, at chosen times."""

from __future__ import annotations

import itertools
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update

from adapters.db.engine import create_engine, sessionmaker, upgrade
from adapters.db.models import Feedback, Ticket
from adapters.db.tickets import DbTicketQueue
from adapters.db.traces import BufferedTraceWriter
from core.handoff.types import NewTicket

_IDS = itertools.count(1)


def trace(age_s: float, now: float | None = None, **facts: Any) -> dict[str, Any]:
    """A finished trace `age_s` seconds old; `facts` override the defaults."""
    base = {
        "request_id": f"seed{next(_IDS):012d}",
        "created_at": (now or time.time()) - age_s,
        "platform": "slack",
        "asker": "jordan.kim@harborlight.example",
        "audience": "dm",
        "question": "How long does a guest Wi-Fi pass last?",
        "mode": "answer",
        "tier": "fast",
        "model": "openai/fast",
        "notices": [],
        "cost_usd": 0.001,
        "latency_ms": 800.0,
        "cache": {"status": "miss", "reason": "no similar question"},
        "stages": {"retrieval": {"start_ms": 5.0, "ms": 20.0}},
        "model_calls": [],
    }
    base.update(facts)
    return base


async def seed(
    db_url: str,
    traces: list[dict[str, Any]],
    votes: dict[str, list[int]] | None = None,
    tickets: dict[str, float | None] | None = None,
) -> None:
    """Write traces, then votes per request id, then a ticket per request id (resolved that
    many seconds after it opened, or open when None)."""
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        writer = BufferedTraceWriter(engine, Path(tempfile.mkdtemp()) / "spill.jsonl")
        for item in traces:
            writer.submit(item)
        assert await writer.flush(10)
        await writer.close()
        sessions = sessionmaker(engine)
        by_id = {t["request_id"]: t for t in traces}
        async with sessions() as session, session.begin():
            for request_id, values in (votes or {}).items():
                for n, value in enumerate(values):
                    session.add(
                        Feedback(
                            request_id=request_id,
                            voter_id=f"U{n}",
                            value=value,
                            created_at=datetime.now(UTC),
                        )
                    )
        queue = DbTicketQueue(engine)
        for request_id, resolved_after in (tickets or {}).items():
            opened = datetime.fromtimestamp(by_id[request_id]["created_at"], UTC)
            new = NewTicket(
                request_id=request_id,
                conversation_id=None,
                asker="jordan.kim@harborlight.example",
                question="q",
                reason="test",
                provider="builtin",
                open_key=f"request:{request_id}",
                origin=None,
                content={},
            )
            stored, _ = await queue.open(new, owner="seed", lease_s=0)
            async with sessions() as session, session.begin():
                await session.execute(
                    update(Ticket).where(Ticket.id == stored.id).values(created_at=opened)
                )
            if resolved_after is not None:
                await queue.close(
                    stored.id, datetime.fromtimestamp(opened.timestamp() + resolved_after, UTC)
                )
    finally:
        await engine.dispose()
