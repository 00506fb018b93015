"""What the handoff needs from the outside: a ticket system, the outbox it keeps in the
database, and the request traces it annotates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from core.handoff.types import (
    Delivered,
    NewMessage,
    NewTicket,
    StoredMessage,
    StoredTicket,
)


class TicketSystem(Protocol):
    """One ticket system (adapters/tickets)."""

    name: str  # the `handoff.provider` value

    async def create(self, ticket: StoredTicket) -> Delivered:
        """Create the ticket from ``ticket.content``; raise DeliveryError when it is not
        there. Called again after a failure whose outcome is unknown (a timeout after the
        system took the request): a system recognises ``ticket.uid`` so that the retry
        returns the first ticket instead of opening a second."""
        ...

    async def close(self) -> None: ...


class HandoffStore(Protocol):
    """The outbox: tickets and chat messages about them, shared by every replica. Rows are
    claimed with a lease before they are delivered, so one delivery runs at a time."""

    async def open(self, new: NewTicket, owner: str, lease_s: float) -> tuple[StoredTicket, bool]:
        """Insert the ticket claimed by ``owner``, or return the ticket already open for
        ``new.open_key``: (ticket, whether it is new)."""
        ...

    async def claim_tickets(self, owner: str, lease_s: float, limit: int) -> list[StoredTicket]:
        """Due tickets not delivered yet, leased to ``owner``."""
        ...

    async def delivered(
        self, ticket_id: int, result: Delivered, messages: Sequence[NewMessage]
    ) -> StoredTicket | None:
        """Record the delivery and queue ``messages`` in one transaction; None when the
        ticket was delivered already (by a worker whose lease had run out)."""
        ...

    async def retry_ticket(
        self, ticket_id: int, error: str, at: datetime, failing: bool
    ) -> StoredTicket | None:
        """Count the attempt and release the lease until ``at``."""
        ...

    async def add_messages(
        self, messages: Sequence[NewMessage], owner: str | None = None, lease_s: float = 0.0
    ) -> list[int]:
        """Queue chat messages (due now; leased to ``owner`` when it posts them itself); the
        ids of those that were new (a known ``dedupe_key`` is skipped)."""
        ...

    async def messages(self, ids: Sequence[int]) -> list[StoredMessage]: ...

    async def claim_messages(self, owner: str, lease_s: float, limit: int) -> list[StoredMessage]:
        """Due chat messages, leased to ``owner``, oldest first."""
        ...

    async def message_sent(self, message_id: int, posted_id: str) -> None: ...

    async def retry_message(
        self, message_id: int, error: str, at: datetime, failing: bool
    ) -> StoredMessage | None: ...

    async def release(self, owner: str) -> None:
        """Give back every lease ``owner`` holds (a graceful shutdown)."""
        ...

    async def get(self, ticket_id: int) -> StoredTicket | None: ...

    async def find(self, provider: str, name: str) -> StoredTicket | None:
        """A ticket by its key or the system's own id (``provider`` None: any provider)."""
        ...

    async def first_response(self, ticket_id: int, at: datetime) -> StoredTicket | None:
        """Record the agent's first public response; None when one was recorded before."""
        ...

    async def close(self, ticket_id: int, at: datetime) -> StoredTicket | None:
        """Close the ticket (the conversation may open a new one); None when it was closed."""
        ...

    async def messages_of(self, ticket_id: int) -> list[StoredMessage]: ...

    async def counts(self) -> dict[str, dict[str, int]]:
        """{"tickets": {delivery state: n}, "messages": {delivery state: n}}."""
        ...


class TraceNotes(Protocol):
    def annotate(self, request_id: str, patch: dict[str, Any]) -> None:
        """Merge ``patch`` into the request's trace, later if need be: never blocks."""
        ...
