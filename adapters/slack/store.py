"""Slack state in the database, shared by every replica."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import Feedback, SlackEvent, SlackRequest, SlackUser


@dataclass(frozen=True, slots=True)
class PostedRequest:
    request_id: str
    team_id: str
    channel_id: str
    thread_ts: str
    user_id: str
    question: str


class SlackStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

    async def claim_event(self, event_id: str) -> bool:
        """True the first time an event id (or another one-off key, e.g. the offer of a
        human in a thread) is seen, on any replica; False for a retry."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(SlackEvent(event_id=event_id, received_at=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True

    async def cached_email(
        self, team_id: str, user_id: str, ttl_s: float
    ) -> tuple[bool, str | None]:
        """(found and fresh, email)."""
        async with self._sessions() as session:
            row = await session.get(SlackUser, (team_id, user_id))
        if row is None:
            return False, None
        fetched = row.fetched_at if row.fetched_at.tzinfo else row.fetched_at.replace(tzinfo=UTC)
        if datetime.now(UTC) - fetched > timedelta(seconds=ttl_s):
            return False, None
        return True, row.email

    async def save_email(self, team_id: str, user_id: str, email: str | None) -> None:
        async with self._sessions() as session, session.begin():
            await session.merge(
                SlackUser(
                    team_id=team_id, user_id=user_id, email=email, fetched_at=datetime.now(UTC)
                )
            )

    async def save_request(self, request: PostedRequest) -> None:
        async with self._sessions() as session, session.begin():
            await session.merge(
                SlackRequest(
                    request_id=request.request_id,
                    team_id=request.team_id,
                    channel_id=request.channel_id,
                    thread_ts=request.thread_ts,
                    user_id=request.user_id,
                    question=request.question,
                    created_at=datetime.now(UTC),
                )
            )

    async def get_request(self, request_id: str) -> PostedRequest | None:
        async with self._sessions() as session:
            row = await session.get(SlackRequest, request_id)
        if row is None:
            return None
        return PostedRequest(
            row.request_id, row.team_id, row.channel_id, row.thread_ts, row.user_id, row.question
        )

    async def is_our_thread(self, channel_id: str, thread_ts: str) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(SlackRequest.request_id)
                .where(SlackRequest.channel_id == channel_id, SlackRequest.thread_ts == thread_ts)
                .limit(1)
            )
        return found is not None

    async def record_feedback(self, request_id: str, user: str, value: int, thread: str) -> int:
        """Store a vote (one per user and answer); returns the 👎 count in the thread."""
        async with self._sessions() as session, session.begin():
            await session.merge(
                Feedback(
                    request_id=request_id,
                    user=user,
                    value=value,
                    thread=thread,
                    created_at=datetime.now(UTC),
                )
            )
        async with self._sessions() as session:
            downs = await session.scalar(
                select(func.count())
                .select_from(Feedback)
                .where(Feedback.thread == thread, Feedback.value < 0)
            )
        return int(downs or 0)

    async def feedback_for(self, request_id: str) -> list[dict[str, object]]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Feedback).where(Feedback.request_id == request_id))
            return [{"user": r.user, "value": r.value} for r in rows]
