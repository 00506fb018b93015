"""Handing a conversation to a human: the TicketProvider port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.conversation.types import ConversationRef

QUEUED = "queued"  # written down, not yet in the ticket system
DELIVERED = "delivered"
FAILING = "failing"  # still retried, and shown to operators


@dataclass(frozen=True, slots=True)
class TicketRequest:
    request_id: str
    conversation_id: str | None
    asker: str | None  # email
    question: str  # PII-redacted
    reason: str  # the trigger
    where: ConversationRef | None = None  # the chat thread it came from
    asker_platform_id: str | None = None  # the asker as the platform names them


@dataclass(frozen=True, slots=True)
class TicketRef:
    id: str | None  # the ticket system's key (HELP-12, 35436, INC0010001, AD-7); None while queued
    provider: str
    url: str | None = None
    handoff: str = ""  # our own handoff id (AD-<n>), known at once
    delivery: str = DELIVERED
    request_id: str = ""  # the request that opened the ticket
    existing: bool = False  # the conversation already had this ticket open

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "url": self.url,
            "handoff": self.handoff,
            "delivery": self.delivery,
        }


class TicketProvider(Protocol):
    async def create(self, request: TicketRequest) -> TicketRef:
        """Open a ticket for the conversation, or return the one already open there (a
        retried event, a second click, another replica): never two."""
        ...
