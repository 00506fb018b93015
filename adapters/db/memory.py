"""Conversation memory on the database: last turns per conversation, expiring."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.models import ConversationTurn
from adapters.db.reader import row_reader
from adapters.db.writes import writes_for
from core.answering.memory import Turn

_TURNS = ConversationTurn.__table__
_RECENT = (
    select(
        _TURNS.c.question, _TURNS.c.search_text, _TURNS.c.mode, _TURNS.c.request_id, _TURNS.c.answer
    )
    .where(
        _TURNS.c.conversation_id == bindparam("conversation_id"),
        _TURNS.c.created_at >= bindparam("since"),
    )
    .order_by(_TURNS.c.id.desc())
    .limit(bindparam("limit"))
)


class SqlConversationMemory:
    def __init__(
        self, engine: AsyncEngine, retention_s: float = 24 * 3600, prune_every_s: float = 60.0
    ) -> None:
        self._reads = row_reader(engine)
        self._writes = writes_for(engine)
        self._retention = retention_s
        self._prune_every_s = prune_every_s
        self._pruned_at = float("-inf")  # time.monotonic() of the last pruning

    async def recent(self, conversation_id: str, limit: int, max_age_s: float) -> list[Turn]:
        since = datetime.now(UTC) - timedelta(seconds=max_age_s)
        # Read on every question: prebuilt, one thread hand-off (adapters/db/reader.py).
        rows = await self._reads.all(
            _RECENT, {"conversation_id": conversation_id, "since": since, "limit": limit}
        )
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
