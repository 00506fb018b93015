"""Conversation memory on the database: last turns per conversation, expiring."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import ConversationTurn
from adapters.db.writes import writes_for
from core.answering.memory import Turn

_TURNS = ConversationTurn.__table__


class SqlConversationMemory:
    def __init__(
        self, engine: AsyncEngine, retention_s: float = 24 * 3600, prune_every_s: float = 60.0
    ) -> None:
        self._sessions = sessionmaker(engine)
        self._writes = writes_for(engine)
        self._retention = retention_s
        self._prune_every_s = prune_every_s
        self._pruned_at = float("-inf")  # time.monotonic() of the last pruning

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
        add = insert(_TURNS).values(
            conversation_id=conversation_id,
            created_at=now,
            question=turn.question,
            search_text=turn.search_text,
            mode=turn.mode,
            request_id=turn.request_id,
            answer=turn.answer,
        )
        # Expired turns go as new ones come, at most once a minute (never read: `recent`
        # asks for younger ones): memory stays small without a sweeper.
        prune = None
        if time.monotonic() - self._pruned_at >= self._prune_every_s:
            self._pruned_at = time.monotonic()
            prune = delete(_TURNS).where(
                _TURNS.c.created_at < now - timedelta(seconds=self._retention)
            )

        def write(conn: Connection) -> None:
            conn.execute(add)
            if prune is not None:
                conn.execute(prune)

        await self._writes.run(write)
