"""Retention: remove what is older than a cut-off — traces (with their votes), conversation
memory, cache entries (rows and vectors), closed tickets, the records of posted answers
(except those an unresolved ticket still needs, to reach its thread), which answer each Teams
message shows, and one-off claims. A dry run only counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.cache_store import ChromaSqlCacheStore
from adapters.db.engine import sessionmaker
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
from adapters.db.outcomes import votes_of

_BATCH = 500


async def purge(
    engine: AsyncEngine, cache: ChromaSqlCacheStore, cutoff: datetime, dry_run: bool
) -> dict[str, Any]:
    old_traces = select(TraceRow.request_id).where(TraceRow.created_at < cutoff)
    closed = and_(
        Ticket.status == "closed",
        or_(
            Ticket.resolved_at < cutoff,
            and_(Ticket.resolved_at.is_(None), Ticket.created_at < cutoff),
        ),
    )
    unresolved = select(Ticket.request_id).where(Ticket.status != "closed")
    old_posts = and_(
        PostedAnswerRow.created_at < cutoff, PostedAnswerRow.request_id.not_in(unresolved)
    )
    counts = {
        "traces": select(func.count()).select_from(TraceRow).where(TraceRow.created_at < cutoff),
        "votes": select(func.count())
        .select_from(Feedback)
        .where(Feedback.request_id.in_(old_traces)),
        "memory_turns": select(func.count())
        .select_from(ConversationTurn)
        .where(ConversationTurn.created_at < cutoff),
        "cache_entries": select(func.count())
        .select_from(CacheEntry)
        .where(CacheEntry.created_at < cutoff),
        "closed_tickets": select(func.count()).select_from(Ticket).where(closed),
        "posted_answers": select(func.count()).select_from(PostedAnswerRow).where(old_posts),
        "claims": select(func.count())
        .select_from(ConversationClaim)
        .where(ConversationClaim.claimed_at < cutoff),
        "event_ids": select(func.count())
        .select_from(SlackEvent)
        .where(SlackEvent.received_at < cutoff),
        "teams_messages": select(func.count())
        .select_from(TeamsAnswerMessage)
        .where(TeamsAnswerMessage.created_at < cutoff),
    }
    sessions = sessionmaker(engine)
    async with sessions() as session:
        found = {name: int(await session.scalar(stmt) or 0) for name, stmt in counts.items()}
    if dry_run:
        return found
    # Cache entries through the store: their vectors go with their rows.
    while True:
        async with sessions() as session:
            ids = (
                await session.scalars(
                    select(CacheEntry.id).where(CacheEntry.created_at < cutoff).limit(_BATCH)
                )
            ).all()
        if not ids:
            break
        await cache.delete(list(ids))
    async with sessions() as session, session.begin():
        await session.execute(votes_of(old_traces))
        await session.execute(delete(TraceRow).where(TraceRow.created_at < cutoff))
        await session.execute(delete(ConversationTurn).where(ConversationTurn.created_at < cutoff))
        await session.execute(delete(Ticket).where(closed))
        await session.execute(delete(PostedAnswerRow).where(old_posts))
        await session.execute(
            delete(ConversationClaim).where(ConversationClaim.claimed_at < cutoff)
        )
        await session.execute(delete(SlackEvent).where(SlackEvent.received_at < cutoff))
        await session.execute(
            delete(TeamsAnswerMessage).where(TeamsAnswerMessage.created_at < cutoff)
        )
    return found
