"""Slack-only state in the database, shared by every replica: users' profile emails. Event
claims, posted answers, votes and offers are the conversation layer's
(adapters/db/conversations.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import SlackUser


class SlackStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

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
