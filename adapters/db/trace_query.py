"""Reading traces back for operators: the facts service levels are computed from, and
filtered lists for the console. Only the few JSON fields needed are extracted in SQL
(SQLite JSON_EXTRACT, PostgreSQL ->>), not whole traces."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import as_utc, sessionmaker
from adapters.db.models import TraceRow
from adapters.db.outcomes import verdicts
from core.evaluation.runner import PLATFORM as EVAL_PLATFORM
from core.stats import RequestRecord

_DATA = TraceRow.data


@dataclass(frozen=True, slots=True)
class TraceFilter:
    since: datetime | None = None
    until: datetime | None = None
    platform: str | None = None
    mode: str | None = None
    user: str | None = None  # the asker's email, or a part of it
    notice: str | None = None  # a notice code
    feedback: str | None = None  # up | down | none
    tier: str | None = None
    before: datetime | None = None  # paging: traces older than this


class TraceQuery:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

    async def records(
        self, since: datetime, platform: str | None = None, release: str | None = None
    ) -> list[RequestRecord]:
        votes = verdicts()
        latency = _DATA["latency_ms"].as_float()
        stmt = (
            select(
                TraceRow.created_at,
                TraceRow.platform,
                TraceRow.mode,
                latency,
                _DATA["first_text_ms"].as_float(),
                _DATA["cost_usd"].as_float(),
                _DATA[("cache", "status")].as_string(),
                _DATA["error"].as_string(),
                votes.c.vote,
            )
            .outerjoin(votes, votes.c.request_id == TraceRow.request_id)
            # Evaluation runs (`eval`, the release gate) are not anyone's requests.
            .where(TraceRow.created_at >= since, TraceRow.platform != EVAL_PLATFORM)
        )
        if platform:
            stmt = stmt.where(TraceRow.platform == platform)
        if release:
            stmt = stmt.where(_DATA["release"].as_string() == release)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        out = []
        for created, plat, mode, latency_ms, first_ms, cost, cache, error, vote in rows:
            latency_s = (latency_ms or 0.0) / 1000
            out.append(
                RequestRecord(
                    at=as_utc(created).timestamp(),
                    platform=plat,
                    mode=mode,
                    latency_s=latency_s,
                    # Without streaming the first visible answer text is the answer itself.
                    first_text_s=latency_s if first_ms is None else first_ms / 1000,
                    cost_usd=cost or 0.0,
                    cache_hit=cache == "hit",
                    internal_error=error is not None,
                    vote=None if vote is None else (-1 if vote < 0 else 1),
                )
            )
        return out

    async def request_ids(self, since: datetime, release: str) -> set[str]:
        """The requests one release answered since then."""
        stmt = select(TraceRow.request_id).where(
            TraceRow.created_at >= since, _DATA["release"].as_string() == release
        )
        async with self._sessions() as session:
            return set((await session.scalars(stmt)).all())

    async def search(self, where: TraceFilter, limit: int = 50) -> list[dict[str, Any]]:
        votes = verdicts()
        stmt = (
            select(
                TraceRow.request_id,
                TraceRow.created_at,
                TraceRow.platform,
                TraceRow.asker,
                TraceRow.mode,
                _DATA["tier"].as_string(),
                _DATA["latency_ms"].as_float(),
                _DATA["cost_usd"].as_float(),
                _DATA[("cache", "status")].as_string(),
                cast(_DATA["notices"], String),
                _DATA["question"].as_string(),
                votes.c.vote,
            )
            .outerjoin(votes, votes.c.request_id == TraceRow.request_id)
            .order_by(TraceRow.created_at.desc())
            .limit(limit)
        )
        conditions = {
            "since": lambda v: TraceRow.created_at >= v,
            "until": lambda v: TraceRow.created_at <= v,
            "before": lambda v: TraceRow.created_at < v,
            "platform": lambda v: TraceRow.platform == v,
            "mode": lambda v: TraceRow.mode == v,
            "user": lambda v: TraceRow.asker.contains(v.lower(), autoescape=True),
            "notice": lambda v: cast(_DATA["notices"], String).contains(f'"{v}"', autoescape=True),
            "tier": lambda v: _DATA["tier"].as_string() == v,
            "feedback": lambda v: {
                "up": votes.c.vote > 0,
                "down": votes.c.vote < 0,
                "none": votes.c.vote.is_(None),
            }[v],
        }
        for name, condition in conditions.items():
            value = getattr(where, name)
            if value:
                stmt = stmt.where(condition(value))
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [
            {
                "request_id": rid,
                "created_at": as_utc(created).isoformat(timespec="seconds"),
                "platform": plat,
                "asker": asker,
                "mode": mode,
                "tier": tier,
                "latency_ms": latency,
                "cost_usd": cost or 0.0,
                "cache": cache,
                "notices": _codes(notices),
                "question": question,
                "vote": vote,
            }
            for (
                rid,
                created,
                plat,
                asker,
                mode,
                tier,
                latency,
                cost,
                cache,
                notices,
                question,
                vote,
            ) in rows
        ]


def _codes(notices: str | None) -> list[str]:
    try:
        value = json.loads(notices) if notices else []
    except ValueError:
        return []
    return [str(code) for code in value] if isinstance(value, list) else []
