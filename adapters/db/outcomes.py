"""What happened after an answer, joined on its request id: votes, and the ticket with its
resolution. Votes are read only here (the conversation layer's `feedback` table, one row
per voter and answer, whichever platform they came from)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Subquery, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import Feedback


def verdicts() -> Subquery:
    """One row per voted request: `request_id` and `vote` (-1 when anyone voted 👎, else +1)."""
    return (
        select(Feedback.request_id.label("request_id"), func.min(Feedback.value).label("vote"))
        .group_by(Feedback.request_id)
        .subquery("verdicts")
    )


async def votes_for(engine: AsyncEngine, request_id: str) -> list[dict[str, Any]]:
    async with sessionmaker(engine)() as session:
        rows = await session.scalars(select(Feedback).where(Feedback.request_id == request_id))
        return [
            {"user": r.voter_id, "value": r.value, "at": r.created_at.isoformat()} for r in rows
        ]


def votes_of(request_ids: Any) -> Any:
    """A DELETE of the votes on these requests (a select of request ids), for retention."""
    return delete(Feedback).where(Feedback.request_id.in_(request_ids))
