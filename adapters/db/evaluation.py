"""What evaluation reads from the database: every chunk with its ACL (for leak checks),
traces of real traffic, and the votes people gave answers (for harvesting cases); and the
runs it keeps there for the console."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import as_utc, sessionmaker
from adapters.db.models import (
    AclSet,
    Chunk,
    Document,
    EvalRun,
    Feedback,
    Passage,
    TraceRow,
)
from core.evaluation.leaks import CorpusChunk


async def corpus_chunks(engine: AsyncEngine) -> list[CorpusChunk]:
    async with sessionmaker(engine)() as session:
        rows = await session.execute(
            select(
                Chunk.id,
                Chunk.document_id,
                Document.source,
                Chunk.page,
                AclSet.principals,
                Passage.text,
            )
            .join(Document, Document.id == Chunk.document_id)
            .join(Passage, Passage.id == Chunk.passage_id)
            .join(AclSet, AclSet.key == Chunk.acl_key)
        )
        return [
            CorpusChunk(cid, doc, source, page, frozenset(principals), text)
            for cid, doc, source, page, principals, text in rows
        ]


async def traces_since(
    engine: AsyncEngine, since: datetime, *, exclude_platforms: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Traces created at or after `since`, oldest first."""
    stmt = select(TraceRow.data).where(TraceRow.created_at >= since)
    if exclude_platforms:
        stmt = stmt.where(TraceRow.platform.not_in(list(exclude_platforms)))
    async with sessionmaker(engine)() as session:
        rows = await session.scalars(stmt.order_by(TraceRow.created_at, TraceRow.request_id))
        return [dict(row) for row in rows]


async def downvoted(engine: AsyncEngine, request_ids: Sequence[str]) -> set[str]:
    """Requests someone voted 👎 on, on any platform (the conversation layer's votes)."""
    if not request_ids:
        return set()
    async with sessionmaker(engine)() as session:
        rows = await session.scalars(
            select(Feedback.request_id)
            .where(Feedback.request_id.in_(list(request_ids)), Feedback.value < 0)
            .distinct()
        )
        return set(rows)


@dataclass(frozen=True)
class StoredRun:
    id: str
    created_at: datetime
    library: str
    config: str
    cases: int
    passed: bool
    summary: dict[str, Any]
    regressions: list[str]
    worst: list[dict[str, Any]]


async def record_run(
    engine: AsyncEngine,
    summary: dict[str, Any],
    regressions: Sequence[str],
    worst: Sequence[dict[str, Any]],
    passed: bool,
) -> str:
    run_id = uuid.uuid4().hex[:12]
    async with sessionmaker(engine)() as session, session.begin():
        session.add(
            EvalRun(
                id=run_id,
                created_at=datetime.now(UTC),
                library=str(summary["library"])[:200],
                config=str(summary["config"])[:200],
                cases=int(summary["cases"]),
                passed=passed,
                summary=summary,
                regressions=list(regressions),
                worst=list(worst),
            )
        )
    return run_id


def _stored(row: EvalRun) -> StoredRun:
    return StoredRun(
        row.id,
        as_utc(row.created_at),
        row.library,
        row.config,
        row.cases,
        row.passed,
        dict(row.summary),
        list(row.regressions),
        list(row.worst),
    )


async def recent_runs(engine: AsyncEngine, limit: int = 100) -> list[StoredRun]:
    async with sessionmaker(engine)() as session:
        rows = await session.scalars(
            select(EvalRun).order_by(EvalRun.created_at.desc(), EvalRun.id).limit(limit)
        )
        return [_stored(row) for row in rows]


async def run_by_id(engine: AsyncEngine, run_id: str) -> StoredRun | None:
    async with sessionmaker(engine)() as session:
        row = await session.get(EvalRun, run_id)
        return _stored(row) if row is not None else None
