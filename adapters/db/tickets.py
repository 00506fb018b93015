"""The built-in ticket queue: the TicketProvider port on the database.

One ticket per request id (a unique constraint), so a retried handoff never opens two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import as_utc, sessionmaker
from adapters.db.models import Ticket
from core.tickets import TicketRef, TicketRequest

PROVIDER = "answerdesk"
PREFIX = "AD-"


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

    async def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(Ticket.status == status)
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [_public(row) for row in rows]

    async def get(self, ticket_id: str) -> dict[str, Any] | None:
        number = parse_id(ticket_id)
        if number is None:
            return None
        async with self._sessions() as session:
            row = await session.get(Ticket, number)
        return _public(row) if row else None

    async def opened_since(self, since: datetime) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(Ticket).where(Ticket.created_at >= since))).all()
        return [_public(row) for row in rows]

    async def for_request(self, request_id: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.scalar(select(Ticket).where(Ticket.request_id == request_id))
        return _public(row) if row else None

    async def resolve(self, ticket_id: str, by: str, note: str | None) -> bool:
        """Close an open ticket; False when there is no such open ticket."""
        number = parse_id(ticket_id)
        if number is None:
            return False
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                update(Ticket)
                .where(Ticket.id == number, Ticket.status == "open")
                .values(
                    status="closed",
                    resolved_at=datetime.now(UTC),
                    resolved_by=by[:64],
                    resolution=(note or None),
                )
            )
        return bool(done.rowcount)

    async def counts(self) -> dict[str, int]:
        """Tickets by status (the built-in queue's share of the tickets metric)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(select(Ticket.status, func.count()).group_by(Ticket.status))
            ).all()
        return {status: int(count) for status, count in rows}

    def _ref(self, ticket_id: int) -> TicketRef:
        url = (
            f"{self._url_base.rstrip('/')}/tickets/{PREFIX}{ticket_id}" if self._url_base else None
        )
        return TicketRef(id=f"{PREFIX}{ticket_id}", provider=PROVIDER, url=url)


def parse_id(ticket_id: str) -> int | None:
    text = ticket_id.strip().upper().removeprefix(PREFIX)
    return int(text) if text.isdigit() and len(text) < 12 else None


def _public(row: Ticket) -> dict[str, Any]:
    return {
        "id": f"{PREFIX}{row.id}",
        "provider": PROVIDER,
        "status": row.status,
        "created_at": as_utc(row.created_at).isoformat(),
        "request_id": row.request_id,
        "conversation_id": row.conversation_id,
        "asker": row.asker,
        "question": row.question,
        "reason": row.reason,
        "resolved_at": as_utc(row.resolved_at).isoformat() if row.resolved_at else None,
        "resolved_by": row.resolved_by,
        "resolution": row.resolution,
        "resolution_s": (
            round((as_utc(row.resolved_at) - as_utc(row.created_at)).total_seconds(), 1)
            if row.resolved_at
            else None
        ),
    }
