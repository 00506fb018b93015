"""The built-in ticket queue: the TicketProvider port on the database.

One ticket per request id (a unique constraint), so a retried handoff never opens two.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import Ticket
from core.tickets import TicketRef, TicketRequest

PROVIDER = "answerdesk"


class DbTicketQueue:
    def __init__(self, engine: AsyncEngine, url_base: str | None = None) -> None:
        self._sessions = sessionmaker(engine)
        self._url_base = url_base

    async def create(self, request: TicketRequest) -> TicketRef:
        try:
            async with self._sessions() as session, session.begin():
                ticket = Ticket(
                    created_at=datetime.now(UTC),
                    status="open",
                    request_id=request.request_id,
                    conversation_id=request.conversation_id,
                    asker=request.asker,
                    question=request.question,
                    reason=request.reason[:256],
                )
                session.add(ticket)
                await session.flush()
                ticket_id = ticket.id
        except IntegrityError:
            async with self._sessions() as session:
                ticket_id = await session.scalar(
                    select(Ticket.id).where(Ticket.request_id == request.request_id)
                )
        return self._ref(int(ticket_id))

    async def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, object]]:
        stmt = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(Ticket.status == status)
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [
            {
                "id": f"AD-{row.id}",
                "status": row.status,
                "created_at": row.created_at.isoformat(),
                "request_id": row.request_id,
                "conversation_id": row.conversation_id,
                "asker": row.asker,
                "question": row.question,
                "reason": row.reason,
            }
            for row in rows
        ]

    def _ref(self, ticket_id: int) -> TicketRef:
        url = f"{self._url_base.rstrip('/')}/tickets/AD-{ticket_id}" if self._url_base else None
        return TicketRef(id=f"AD-{ticket_id}", provider=PROVIDER, url=url)
