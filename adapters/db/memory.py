"""Conversation memory on the database: last turns per conversation, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import ConversationTurn
from core.answering.memory import Turn


class SqlConversationMemory:
    def __init__(self, engine: AsyncEngine, retention_s: float = 24 * 3600) -> None:
        self._sessions = sessionmaker(engine)
        self._retention = retention_s

    async def recent(self, conversation_id: str, limit: int, max_age_s: float) -> list[Turn]:
        since = datetime.now(UTC) - timedelta(seconds=max_age_s)
        stmt = (
            select(ConversationTurn)
            .where(
                ConversationTurn.conversation_id == conversation_id,
                ConversationTurn.created_at >= since,
            )
            .order_by(ConversationTurn.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [
            Turn(r.question, r.search_text, r.mode, r.request_id, r.answer) for r in reversed(rows)
        ]

    async def add(self, conversation_id: str, turn: Turn) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            session.add(
                ConversationTurn(
                    conversation_id=conversation_id,
                    created_at=now,
                    question=turn.question,
                    search_text=turn.search_text,
                    mode=turn.mode,
                    request_id=turn.request_id,
                    answer=turn.answer,
                )
            )
            # Expired turns go as new ones come: memory stays small without a sweeper.
            await session.execute(
                delete(ConversationTurn).where(
                    ConversationTurn.created_at < now - timedelta(seconds=self._retention)
                )
            )
