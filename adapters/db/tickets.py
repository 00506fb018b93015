"""The handoff outbox on the database (the core's HandoffStore): tickets of every provider
(the built-in queue's keys are AD-<n>) and the chat messages about them.

Once-only guarantees are the database's: one open ticket per conversation (the unique
`open_key`, NULL once closed), one message per agent event (the unique `dedupe_key`), and
one worker per row at a time. A worker claims due rows with a single UPDATE that leases
them (`claimed_by`, `claimed_until`): on PostgreSQL the rows are picked with `FOR UPDATE
SKIP LOCKED`, so replicas claiming at the same moment skip each other's rows instead of
queueing behind them; SQLite runs one write statement at a time, which makes the same
UPDATE exclusive there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker, upsert_insert
from adapters.db.models import Ticket, TicketMessage
from core.handoff.types import (
    Delivered,
    NewMessage,
    NewTicket,
    StoredMessage,
    StoredTicket,
    parse_handoff_id,
    ref_from_dict,
    ref_to_dict,
    utcnow,
)
from core.tickets import DELIVERED, FAILING, QUEUED

_PENDING = (QUEUED, FAILING)


class DbTicketQueue:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._insert = upsert_insert(engine)

    # --- tickets ----------------------------------------------------------------------

    async def open(self, new: NewTicket, owner: str, lease_s: float) -> tuple[StoredTicket, bool]:
        now = utcnow()
        for _ in range(3):  # the open ticket may be closed between our insert and our read
            try:
                async with self._sessions() as session, session.begin():
                    row = Ticket(
                        created_at=now,
                        status="open",
                        request_id=new.request_id,
                        conversation_id=new.conversation_id,
                        asker=new.asker,
                        question=new.question,
                        reason=new.reason,
                        provider=new.provider,
                        uid=uuid.uuid4().hex,
                        open_key=new.open_key,
                        origin=ref_to_dict(new.origin) if new.origin else None,
                        content=new.content,
                        delivery=QUEUED,
                        attempts=0,
                        next_attempt_at=now,
                        claimed_by=owner,
                        claimed_until=now + timedelta(seconds=lease_s),
                    )
                    session.add(row)
                    await session.flush()
                    return _ticket(row), True
            except IntegrityError:
                async with self._sessions() as session:
                    row = await session.scalar(
                        select(Ticket).where(Ticket.open_key == new.open_key)
                    )
                if row is not None:
                    return _ticket(row), False
        raise RuntimeError(f"could not open a ticket for {new.open_key}")

    async def claim_tickets(self, owner: str, lease_s: float, limit: int) -> list[StoredTicket]:
        rows = await self._claim(Ticket, owner, lease_s, limit)
        return [_ticket(row) for row in rows]

    async def delivered(
        self, ticket_id: int, result: Delivered, messages: Sequence[NewMessage]
    ) -> StoredTicket | None:
        now = utcnow()
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                update(Ticket)
                .where(Ticket.id == ticket_id, Ticket.delivery != DELIVERED)
                .values(
                    key=result.key[:64],
                    external_id=(result.external_id or "")[:64] or None,
                    url=(result.url or "")[:1024] or None,
                    delivery=DELIVERED,
                    delivered_at=now,
                    claimed_by=None,
                    claimed_until=None,
                    next_attempt_at=None,
                    last_error=None,
                )
            )
            if done.rowcount != 1:
                return None
            if messages:
                await session.execute(self._new_messages(messages, now))
            row = await session.get(Ticket, ticket_id)
            return _ticket(row) if row else None

    async def retry_ticket(
        self, ticket_id: int, error: str, at: datetime, failing: bool
    ) -> StoredTicket | None:
        return await self._retry(Ticket, ticket_id, error, at, failing, _ticket)

    async def get(self, ticket_id: int) -> StoredTicket | None:
        async with self._sessions() as session:
            row = await session.get(Ticket, ticket_id)
        return _ticket(row) if row else None

    async def find(self, provider: str | None, name: str) -> StoredTicket | None:
        """By key or the system's own id (``provider`` None: any), or by AD-<n>."""
        number = parse_handoff_id(name)
        matches: ColumnElement[bool] = or_(Ticket.key == name, Ticket.external_id == name)
        if number is not None:
            matches = or_(matches, Ticket.id == number)
        stmt = select(Ticket).where(matches).order_by(Ticket.id.desc()).limit(1)
        if provider is not None:
            stmt = stmt.where(Ticket.provider == provider)
        async with self._sessions() as session:
            row = await session.scalar(stmt)
        return _ticket(row) if row else None

    async def first_response(self, ticket_id: int, at: datetime) -> StoredTicket | None:
        return await self._set_once(ticket_id, Ticket.first_response_at, {"first_response_at": at})

    async def close(self, ticket_id: int, at: datetime) -> StoredTicket | None:
        # open_key goes: the conversation may hand off again, to a new ticket.
        return await self._set_once(
            ticket_id, Ticket.resolved_at, {"resolved_at": at, "status": "closed", "open_key": None}
        )

    async def _set_once(
        self, ticket_id: int, column: Any, values: dict[str, Any]
    ) -> StoredTicket | None:
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                update(Ticket).where(Ticket.id == ticket_id, column.is_(None)).values(**values)
            )
            if done.rowcount != 1:
                return None
            row = await session.get(Ticket, ticket_id)
            return _ticket(row) if row else None

    async def list(
        self, status: str | None = None, limit: int = 100, *, failed: bool = False
    ) -> list[dict[str, Any]]:
        """Newest first; ``failed``: deliveries that keep failing (the ticket, or a message
        about it)."""
        stmt = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(Ticket.status == status)
        if failed:
            stuck = select(TicketMessage.ticket_id).where(TicketMessage.delivery == FAILING)
            stmt = stmt.where(or_(Ticket.delivery == FAILING, Ticket.id.in_(stuck)))
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [_ticket(row).to_dict() for row in rows]

    async def for_request(self, request_id: str) -> dict[str, Any] | None:
        """The newest ticket a request handed off to, as `tickets show` prints it."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(Ticket)
                .where(Ticket.request_id == request_id)
                .order_by(Ticket.id.desc())
                .limit(1)
            )
        return _ticket(row).to_dict() if row else None

    async def opened_since(self, since: datetime) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(Ticket).where(Ticket.created_at >= since))).all()
        return [_ticket(row).to_dict() for row in rows]

    async def by_provider(self) -> dict[tuple[str, str], int]:
        """Tickets per (provider, state) for the metrics: `queued` / `failing` while the
        ticket system has not taken them, then `open` / `closed`."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Ticket.provider, Ticket.delivery, Ticket.status, func.count()).group_by(
                        Ticket.provider, Ticket.delivery, Ticket.status
                    )
                )
            ).all()
        out: dict[tuple[str, str], int] = {}
        for provider, delivery, status, count in rows:
            state = status if delivery == DELIVERED else delivery
            out[(provider, state)] = out.get((provider, state), 0) + int(count)
        return out

    async def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        async with self._sessions() as session:
            for name, model in (("tickets", Ticket), ("messages", TicketMessage)):
                result = await session.execute(
                    select(model.delivery, func.count()).group_by(model.delivery)
                )
                states = {QUEUED: 0, DELIVERED: 0, FAILING: 0}
                states.update({state: int(n) for state, n in result.all()})
                out[name] = states
        return out

    # --- chat messages -------------------------------------------------------------------

    async def add_messages(
        self, messages: Sequence[NewMessage], owner: str | None = None, lease_s: float = 0.0
    ) -> list[int]:
        if not messages:
            return []
        now = utcnow()
        lease = {"claimed_by": owner, "claimed_until": now + timedelta(seconds=lease_s)}
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                self._new_messages(messages, now, lease if owner else {}).returning(
                    TicketMessage.id
                )
            )
            return [int(i) for i in result.scalars()]

    async def messages(self, ids: Sequence[int]) -> list[StoredMessage]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(TicketMessage)
                .where(TicketMessage.id.in_(list(ids)))
                .order_by(TicketMessage.id)
            )
            return [_message(row) for row in rows]

    def _new_messages(
        self, messages: Sequence[NewMessage], now: datetime, lease: dict[str, Any] | None = None
    ) -> Any:
        rows = [
            {
                "ticket_id": m.ticket_id,
                "created_at": now,
                "kind": m.kind,
                "dedupe_key": m.dedupe_key,
                "target": ref_to_dict(m.target),
                "text": m.text,
                "request_id": m.request_id,
                "author": (m.author or "")[:256] or None,
                "delivery": QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                **(lease or {}),
            }
            for m in messages
        ]
        return (
            self._insert(TicketMessage)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[TicketMessage.dedupe_key])
        )

    async def claim_messages(self, owner: str, lease_s: float, limit: int) -> list[StoredMessage]:
        rows = await self._claim(TicketMessage, owner, lease_s, limit)
        return [_message(row) for row in rows]

    async def message_sent(self, message_id: int, posted_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(TicketMessage)
                .where(TicketMessage.id == message_id)
                .values(
                    delivery=DELIVERED,
                    delivered_at=utcnow(),
                    message_id=posted_id[:128],
                    claimed_by=None,
                    claimed_until=None,
                    next_attempt_at=None,
                    last_error=None,
                )
            )

    async def retry_message(
        self, message_id: int, error: str, at: datetime, failing: bool
    ) -> StoredMessage | None:
        return await self._retry(TicketMessage, message_id, error, at, failing, _message)

    async def messages_of(self, ticket_id: int) -> list[StoredMessage]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(TicketMessage)
                .where(TicketMessage.ticket_id == ticket_id)
                .order_by(TicketMessage.id)
            )
            return [_message(row) for row in rows]

    # --- the outbox mechanics, shared by both tables ------------------------------------------

    async def release(self, owner: str) -> None:
        async with self._sessions() as session, session.begin():
            for model in (Ticket, TicketMessage):
                await session.execute(
                    update(model)
                    .where(model.claimed_by == owner, model.delivery != DELIVERED)
                    .values(claimed_by=None, claimed_until=None)
                )

    async def _claim(
        self,
        model: type[Ticket] | type[TicketMessage],
        owner: str,
        lease_s: float,
        limit: int,
    ) -> list[Any]:
        now = utcnow()
        due: Select[Any] = (
            select(model.id)
            .where(
                model.delivery.in_(_PENDING),
                model.next_attempt_at <= now,
                or_(model.claimed_until.is_(None), model.claimed_until < now),
            )
            .order_by(model.next_attempt_at, model.id)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(model)
                .where(model.id.in_(due.scalar_subquery()))
                .values(claimed_by=owner, claimed_until=now + timedelta(seconds=lease_s))
                .returning(model)
                .execution_options(synchronize_session=False)
            )
            rows = list(result.scalars())
        return sorted(rows, key=lambda row: row.id)

    async def _retry(
        self, model: Any, row_id: int, error: str, at: datetime, failing: bool, convert: Any
    ) -> Any:
        async with self._sessions() as session, session.begin():
            values: dict[str, Any] = {
                "attempts": model.attempts + 1,
                "last_error": error[:512],
                "next_attempt_at": at,
                "claimed_by": None,
                "claimed_until": None,
            }
            if failing:
                values["delivery"] = FAILING
            await session.execute(
                update(model)
                .where(model.id == row_id, model.delivery != DELIVERED)
                .values(**values)
            )
            row = await session.get(model, row_id)
            return convert(row) if row else None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _ticket(row: Ticket) -> StoredTicket:
    return StoredTicket(
        id=row.id,
        uid=row.uid or f"legacy-{row.id}",
        provider=row.provider,
        status=row.status,
        delivery=row.delivery,
        attempts=row.attempts or 0,
        request_id=row.request_id,
        created_at=_utc(row.created_at) or utcnow(),
        content=row.content or {},
        origin=ref_from_dict(row.origin) if row.origin else None,
        key=row.key,
        external_id=row.external_id,
        url=row.url,
        conversation_id=row.conversation_id,
        asker=row.asker,
        question=row.question,
        reason=row.reason,
        last_error=row.last_error,
        next_attempt_at=_utc(row.next_attempt_at),
        delivered_at=_utc(row.delivered_at),
        first_response_at=_utc(row.first_response_at),
        resolved_at=_utc(row.resolved_at),
    )


def _message(row: TicketMessage) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        ticket_id=row.ticket_id,
        kind=row.kind,
        target=ref_from_dict(row.target),
        text=row.text,
        delivery=row.delivery,
        attempts=row.attempts or 0,
        created_at=_utc(row.created_at) or utcnow(),
        request_id=row.request_id,
        author=row.author,
        last_error=row.last_error,
        message_id=row.message_id,
    )
