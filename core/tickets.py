"""Handing a conversation to a human: the TicketProvider port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TicketRequest:
    request_id: str
    conversation_id: str | None
    asker: str | None
    question: str  # PII-redacted
    reason: str


@dataclass(frozen=True, slots=True)
class TicketRef:
    id: str
    provider: str
    url: str | None = None


class TicketProvider(Protocol):
    async def create(self, request: TicketRequest) -> TicketRef:
        """Create the ticket once per request id (a retry returns the same ticket)."""
        ...


class AskerReply(Protocol):
    """Posts a human agent's reply into the conversation a ticket came from (found by the
    request id of the answer that handed off)."""

    async def __call__(self, request_id: str, message: str) -> None: ...
