"""The handoff's vocabulary: tickets and chat messages in the outbox, what a ticket system
answers, and what an agent does to a ticket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.conversation.types import ConversationRef
from core.tickets import DELIVERED, TicketRef


def utcnow() -> datetime:
    return datetime.now(UTC)


def handoff_id(ticket_id: int) -> str:
    """Our own id of a handoff, whatever the provider (the built-in queue's ticket key)."""
    return f"AD-{ticket_id}"


def parse_handoff_id(text: str) -> int | None:
    head, _, number = text.strip().upper().partition("-")
    return int(number) if head == "AD" and number.isdigit() else None


def ref_to_dict(where: ConversationRef) -> dict[str, Any]:
    return {
        "platform": where.platform,
        "tenant": where.tenant,
        "conversation": where.conversation,
        "thread": where.thread,
        "message": where.message,
        "extra": dict(where.extra),
    }


def ref_from_dict(data: Mapping[str, Any]) -> ConversationRef:
    return ConversationRef(
        platform=data["platform"],
        tenant=data.get("tenant") or "",
        conversation=data["conversation"],
        thread=data.get("thread") or "",
        message=data.get("message"),
        extra=dict(data.get("extra") or {}),
    )


@dataclass(frozen=True, slots=True)
class NewTicket:
    request_id: str
    conversation_id: str | None
    asker: str | None
    question: str
    reason: str
    provider: str
    open_key: str  # one open ticket per conversation (or per request, outside a conversation)
    origin: ConversationRef | None
    content: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredTicket:
    id: int
    uid: str  # sent to ticket systems as an idempotency reference
    provider: str
    status: str  # open | closed
    delivery: str
    attempts: int
    request_id: str
    created_at: datetime
    content: dict[str, Any] = field(default_factory=dict)
    origin: ConversationRef | None = None
    key: str | None = None
    external_id: str | None = None
    url: str | None = None
    conversation_id: str | None = None
    asker: str | None = None
    question: str = ""
    reason: str = ""
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def handoff(self) -> str:
        return handoff_id(self.id)

    def ref(self, *, existing: bool = False) -> TicketRef:
        return TicketRef(
            id=self.key if self.delivery == DELIVERED else None,
            provider=self.provider,
            url=self.url,
            handoff=self.handoff,
            delivery=self.delivery,
            request_id=self.request_id,
            existing=existing,
        )

    def outcome(self) -> dict[str, Any]:
        """The ticket as the request's trace records it."""
        return {
            **self.ref().to_dict(),
            "status": self.status,
            "first_response_s": _seconds(self.created_at, self.first_response_at),
            "resolution_s": _seconds(self.created_at, self.resolved_at),
        }

    def to_dict(self) -> dict[str, Any]:
        """The ticket as `answerdesk tickets list|show --json` prints it."""
        return {
            "id": self.handoff,
            "key": self.key,
            "provider": self.provider,
            "status": self.status,
            "delivery": self.delivery,
            "url": self.url,
            "request_id": self.request_id,
            "created_at": self.created_at.isoformat(),
            "conversation_id": self.conversation_id,
            "asker": self.asker,
            "question": self.question,
            "reason": self.reason,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": _iso(self.next_attempt_at),
            "delivered_at": _iso(self.delivered_at),
            "first_response_s": _seconds(self.created_at, self.first_response_at),
            "resolution_s": _seconds(self.created_at, self.resolved_at),
        }


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A chat message about a ticket, posted by the delivery worker."""

    ticket_id: int
    kind: str  # opened | announce | comment | status
    dedupe_key: str  # the same event never posts twice
    target: ConversationRef
    text: str  # markdown
    request_id: str | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    ticket_id: int
    kind: str
    target: ConversationRef
    text: str
    delivery: str
    attempts: int
    created_at: datetime
    request_id: str | None = None
    author: str | None = None
    last_error: str | None = None
    message_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "author": self.author,
            "delivery": self.delivery,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
            "platform": self.target.platform,
            "conversation": self.target.conversation,
            "thread": self.target.thread,
            "message_id": self.message_id,
        }


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a ticket system answers when a ticket exists there."""

    key: str  # what people see: HELP-12, 35436, INC0010001
    external_id: str | None = None  # the system's own id, when it differs (Jira 10001, sys_id)
    url: str | None = None  # the ticket for an agent


class DeliveryError(Exception):
    """A delivery that did not happen. ``retry_after``: the system asked us to wait (429);
    ``permanent``: the request itself is wrong (a 4xx): retrying soon will not help, so the
    delivery counts as failing at once (it is still retried, slowly, and never dropped)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class EventKind(StrEnum):
    COMMENT = "comment"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """Something an agent did to a ticket, as its ticket system reported it."""

    provider: str
    ticket: str  # the ticket as the event names it: its key or the system's own id
    kind: EventKind
    event_id: str  # unique per event: a redelivered webhook is recognised
    public: bool = True  # False: an internal note, never shown in the chat
    author: str | None = None
    text: str = ""
    status: str | None = None  # the new status, in the system's words
    resolved: bool = False  # the new status means solved / resolved / closed
    at: datetime | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 1) if end else None
