"""What agents do to tickets, brought back to the conversation: public comments and status
changes become messages in the thread the request came from; internal notes never do. The
agent's first public response and the resolution are recorded on the ticket and written to
the request's trace. `TicketDesk` is the built-in queue's agent side (the `answerdesk
tickets` command and the admin console both call it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from core.handoff import texts
from core.handoff.service import Handoffs
from core.handoff.types import (
    AgentEvent,
    EventKind,
    NewMessage,
    StoredTicket,
    parse_handoff_id,
    utcnow,
)

log = structlog.get_logger()

POSTED = "queued for the thread"
INTERNAL = "internal note: not posted"
UNKNOWN = "unknown ticket"
DUPLICATE = "already seen"
NO_THREAD = "no thread to post into"
EMPTY = "empty comment"
BUILTIN = "builtin"


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # one of the constants above
    ticket: StoredTicket | None = None
    message_ids: tuple[int, ...] = ()


class TicketEvents:
    def __init__(self, handoffs: Handoffs) -> None:
        self._handoffs = handoffs
        self._store = handoffs.store

    async def apply(self, event: AgentEvent, *, post_here: bool = False) -> Applied:
        """``post_here``: this process posts the resulting messages itself (``post_now``)."""
        ticket = await self._store.find(event.provider, event.ticket)
        if ticket is None:
            log.info("ticket event for an unknown ticket", provider=event.provider)
            return Applied(UNKNOWN)
        # The system's own clock (when the agent acted), never before the handoff itself.
        at = max(event.at or utcnow(), ticket.created_at)
        key = ticket.key or ticket.handoff
        if event.kind is EventKind.COMMENT:
            if not event.public:
                return Applied(INTERNAL, ticket)  # never leaves the ticket system
            if not event.text.strip():
                return Applied(EMPTY, ticket)
            text = texts.agent_comment(key, event.author, event.text)
            applied = await self._queue(ticket, "comment", event, text, post_here)
            if applied.outcome == POSTED and (
                responded := await self._store.first_response(ticket.id, at)
            ):
                self._handoffs.annotate(responded)
            return applied
        text = texts.status_change(key, event.status, event.resolved, event.author)
        applied = await self._queue(ticket, "status", event, text, post_here)
        if event.resolved and (closed := await self._store.close(ticket.id, at)):
            self._handoffs.annotate(closed)
        return applied

    async def _queue(
        self, ticket: StoredTicket, kind: str, event: AgentEvent, text: str, here: bool
    ) -> Applied:
        if ticket.origin is None:
            return Applied(NO_THREAD, ticket)
        ids = await self._handoffs.add_messages(
            [
                NewMessage(
                    ticket.id,
                    kind,
                    f"{event.provider}:{event.event_id}"[:200],
                    ticket.origin,
                    text,
                    ticket.request_id,
                    event.author,
                )
            ],
            here=here,
        )
        return Applied(POSTED if ids else DUPLICATE, ticket, tuple(ids))


class TicketNotFound(LookupError):
    pass


class NotBuiltin(ValueError):
    """The ticket lives in another system: agents answer it there."""


class TicketDesk:
    """The built-in queue for agents: show a ticket, reply into the asker's thread, resolve
    it. Replies are posted at once when this process can reach the platform, else queued
    for the service's worker (the result says which)."""

    def __init__(self, handoffs: Handoffs, events: TicketEvents | None = None) -> None:
        self._handoffs = handoffs
        self._store = handoffs.store
        self._events = events or TicketEvents(handoffs)

    async def show(self, name: str) -> dict[str, Any]:
        ticket = await self._find(name)
        messages = await self._store.messages_of(ticket.id)
        return {
            **ticket.to_dict(),
            "content": ticket.content,
            "messages": [m.to_dict() for m in messages],
        }

    async def reply(self, name: str, text: str, agent: str | None = None) -> dict[str, Any]:
        if not text.strip():
            raise ValueError("the reply is empty")
        ticket = await self._builtin(name)
        return await self._act(
            ticket,
            AgentEvent(BUILTIN, ticket.handoff, EventKind.COMMENT, _event_id(), True, agent, text),
        )

    async def resolve(self, name: str, agent: str | None = None) -> dict[str, Any]:
        ticket = await self._builtin(name)
        if ticket.status == "closed":
            return {"ticket": ticket.to_dict(), "outcome": "already resolved", "messages": []}
        event = AgentEvent(
            BUILTIN,
            ticket.handoff,
            EventKind.STATUS,
            _event_id(),
            True,
            agent,
            "",
            "resolved",
            True,
        )
        return await self._act(ticket, event)

    async def _act(self, ticket: StoredTicket, event: AgentEvent) -> dict[str, Any]:
        applied = await self._events.apply(event, post_here=True)
        posted = await self._handoffs.post_now(applied.message_ids) if applied.message_ids else []
        current = await self._store.get(ticket.id) or ticket
        return {
            "ticket": current.to_dict(),
            "outcome": applied.outcome,
            "messages": [m.to_dict() for m in posted],
        }

    async def _builtin(self, name: str) -> StoredTicket:
        ticket = await self._find(name)
        if ticket.provider != BUILTIN:
            raise NotBuiltin(
                f"{ticket.key or ticket.handoff} is a {ticket.provider} ticket: answer it in "
                f"{texts.provider_name(ticket.provider)}"
            )
        return ticket

    async def _find(self, name: str) -> StoredTicket:
        number = parse_handoff_id(name)
        ticket = await self._store.get(number) if number is not None else None
        ticket = ticket or await self._store.find(None, name.strip())
        if ticket is None:
            raise TicketNotFound(f"no ticket {name}")
        return ticket


def _event_id() -> str:
    return uuid.uuid4().hex
