"""What evaluation reads from the database: every chunk with its ACL (for leak checks),
traces of real traffic, and the votes people gave answers (for harvesting cases)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import AclSet, Chunk, Document, Feedback, Passage, TraceRow
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
