"""Handoffs through the outbox: the core's TicketProvider, and the delivery of tickets and of
the chat messages about them (ARCHITECTURE §7a, "Outbox for the outside world")."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import structlog

from core.conversation.messages import TextMessage
from core.conversation.outbound import Outbound
from core.conversation.ports import Unreachable
from core.conversation.types import ConversationRef
from core.handoff import texts
from core.handoff.content import ContentBuilder
from core.handoff.ports import HandoffStore, TicketSystem, TraceNotes
from core.handoff.types import (
    Delivered,
    DeliveryError,
    NewMessage,
    NewTicket,
    StoredMessage,
    StoredTicket,
    utcnow,
)
from core.tickets import DELIVERED, FAILING, TicketRef, TicketRequest

log = structlog.get_logger()
AnnounceTo = Callable[[StoredTicket], "ConversationRef | None"]


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    timeout_s: float = 10.0  # one delivery attempt
    inline_timeout_s: float = 5.0  # the attempt the user waits for; 0: always queue
    backoff_s: float = 2.0
    max_backoff_s: float = 600.0
    failing_after: int = 5
    poll_s: float = 2.0
    lease_s: float = 60.0
    batch: int = 20


def retry_delay(
    attempts: int,
    error: DeliveryError,
    config: DeliveryConfig,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next attempt, after ``attempts`` failed ones. A system's
    ``Retry-After`` is honoured (never earlier; a little later, so replicas do not all come
    back at the same instant); a permanent error waits the longest; otherwise exponential
    backoff with jitter ("equal jitter": half the step fixed, half random)."""
    if error.retry_after is not None:
        return error.retry_after + rng() * min(1.0, 0.1 * error.retry_after)
    if error.permanent:
        return config.max_backoff_s
    step = min(config.max_backoff_s, config.backoff_s * 2 ** max(attempts - 1, 0))
    return step / 2 + rng() * step / 2


def worker_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Handoffs:
    """One per process. ``create`` is the TicketProvider port; ``deliver_due`` is one round
    of the delivery worker; ``add_messages`` / ``post_now`` queue and post chat messages."""

    def __init__(
        self,
        store: HandoffStore,
        system: TicketSystem,
        content: ContentBuilder,
        *,
        outbound: Outbound | None = None,
        notes: TraceNotes | None = None,
        config: DeliveryConfig | None = None,
        announce_to: AnnounceTo | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.system = system
        self.content = content
        self._outbound = outbound
        self._notes = notes
        self.config = config or DeliveryConfig()
        self._announce_to = announce_to
        self._rng = rng
        self.owner = worker_id()
        self.stats: Counter[str] = Counter()  # this process's attempts, for metrics
        self.wake: Callable[[], None] = lambda: None  # set by the running worker

    @property
    def provider(self) -> str:
        return self.system.name

    # --- the TicketProvider port --------------------------------------------------------

    async def create(self, request: TicketRequest) -> TicketRef:
        """Written down first (one open ticket per conversation: the database decides,
        whichever replica or click comes first), then delivered while the user waits up to
        ``inline_timeout_s``; otherwise queued for the worker."""
        content = await self.content.build(request)
        ticket, new = await self.store.open(
            NewTicket(
                request_id=request.request_id,
                conversation_id=request.conversation_id,
                asker=request.asker,
                question=request.question,
                reason=request.reason[:256],
                provider=self.provider,
                open_key=request.conversation_id or f"request:{request.request_id}",
                origin=request.where,
                content=content,
            ),
            self.owner,
            self.config.lease_s,
        )
        if not new:
            return ticket.ref(existing=True)
        if self.config.inline_timeout_s > 0:
            ticket = await self._deliver(ticket, self.config.inline_timeout_s, inline=True)
        else:
            ticket = await self._retry(ticket, DeliveryError("queued without waiting"), count=False)
        self.annotate(ticket)
        return ticket.ref()

    # --- delivery -------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim and deliver what is due: tickets (in parallel), then chat messages (in
        order). Returns how many rows were worked on."""
        tickets = await self.store.claim_tickets(self.owner, self.config.lease_s, self.config.batch)
        if tickets:
            delivered = await asyncio.gather(
                *(self._deliver(t, self.config.timeout_s, inline=False) for t in tickets)
            )
            for ticket in delivered:
                self.annotate(ticket)
        messages = await self.store.claim_messages(
            self.owner, self.config.lease_s, self.config.batch
        )
        for message in messages:
            await self._post(message)
        return len(tickets) + len(messages)

    async def _deliver(
        self, ticket: StoredTicket, timeout_s: float, *, inline: bool
    ) -> StoredTicket:
        try:
            result = await asyncio.wait_for(self.system.create(ticket), timeout_s)
        except TimeoutError:
            return await self._retry(ticket, DeliveryError(f"no answer within {timeout_s:g} s"))
        except DeliveryError as exc:
            return await self._retry(ticket, exc)
        except Exception as exc:  # a bug or an unexpected failure: retried like any other
            log.exception("ticket delivery raised", handoff=ticket.handoff)
            return await self._retry(ticket, DeliveryError(type(exc).__name__))
        done = await self.store.delivered(
            ticket.id, result, self._after_delivery(ticket, result, inline)
        )
        self.stats["tickets_delivered"] += 1
        if done is None:  # another worker recorded it first
            return (await self.store.get(ticket.id)) or ticket
        log.info(
            "ticket delivered",
            handoff=done.handoff,
            provider=done.provider,
            key=done.key,
            request_id=done.request_id,
        )
        self.wake()  # the messages it queued
        return done

    def _after_delivery(
        self, ticket: StoredTicket, result: Delivered, inline: bool
    ) -> list[NewMessage]:
        """The thread learns the key when it waited for it (the user was told "queued");
        the escalation channel hears of every new ticket."""
        out = []
        if ticket.origin is not None and not inline:
            out.append(
                NewMessage(
                    ticket.id,
                    "opened",
                    f"opened:{ticket.id}",
                    ticket.origin,
                    texts.opened_later(result.key, result.url),
                    ticket.request_id,
                )
            )
        channel = self._announce_to(ticket) if self._announce_to else None
        if channel is not None:
            content = ticket.content
            asker = (content.get("asker") or {}).get("email") or ticket.asker or "someone"
            link = (content.get("conversation") or {}).get("link")
            text = texts.announcement(
                result.key, result.url, content.get("summary", ""), asker, link
            )
            out.append(
                NewMessage(ticket.id, "announce", f"announce:{ticket.id}", channel, text, None)
            )
        return out

    async def _retry(
        self, ticket: StoredTicket, error: DeliveryError, *, count: bool = True
    ) -> StoredTicket:
        attempts = ticket.attempts + (1 if count else 0)
        failing = count and (error.permanent or attempts >= self.config.failing_after)
        delay = retry_delay(attempts, error, self.config, self._rng) if count else 0.0
        at = utcnow() + timedelta(seconds=delay)
        message = str(error)[:500]
        updated = await self.store.retry_ticket(ticket.id, message, at, failing)
        if count:
            self.stats["ticket_attempts_failed"] += 1
        if failing and ticket.delivery != FAILING:
            log.error(
                "ticket delivery failing",
                handoff=ticket.handoff,
                provider=ticket.provider,
                request_id=ticket.request_id,
                attempts=attempts,
                error=message,
                next_attempt_in_s=round(delay, 1),
            )
        elif count:
            log.warning(
                "ticket delivery failed, will retry",
                handoff=ticket.handoff,
                provider=ticket.provider,
                attempts=attempts,
                error=message,
                next_attempt_in_s=round(delay, 1),
            )
        return updated or replace(ticket, attempts=attempts, last_error=message)

    # --- chat messages ----------------------------------------------------------------------

    async def add_messages(
        self, messages: Sequence[NewMessage], *, here: bool = False
    ) -> list[int]:
        """Queue chat messages for the worker; ``here``: leased to this process, which posts
        them itself with ``post_now`` (an agent at the command line waits for the result)."""
        if here:
            return await self.store.add_messages(messages, self.owner, self.config.lease_s)
        ids = await self.store.add_messages(messages)
        if ids:
            self.wake()
        return ids

    async def post_now(self, ids: Sequence[int]) -> list[StoredMessage]:
        """Post messages queued with ``here``; what fails stays queued for the worker."""
        return [await self._post(message) for message in await self.store.messages(ids)]

    async def _post(self, message: StoredMessage) -> StoredMessage:
        try:
            if self._outbound is None:
                raise Unreachable("this process cannot post into conversations")
            posted = await self._outbound.post_to(
                message.target, TextMessage(message.text, message.request_id)
            )
        except Unreachable as exc:
            return await self._retry_message(message, str(exc))
        except Exception as exc:
            log.exception("ticket message raised", message_id=message.id)
            return await self._retry_message(message, type(exc).__name__)
        await self.store.message_sent(message.id, posted)
        self.stats["messages_posted"] += 1
        return replace(message, delivery=DELIVERED, message_id=posted)

    async def _retry_message(self, message: StoredMessage, error: str) -> StoredMessage:
        attempts = message.attempts + 1
        failing = attempts >= self.config.failing_after
        delay = retry_delay(attempts, DeliveryError(error), self.config, self._rng)
        updated = await self.store.retry_message(
            message.id, error[:500], utcnow() + timedelta(seconds=delay), failing
        )
        self.stats["message_attempts_failed"] += 1
        level = log.error if failing and message.delivery != FAILING else log.warning
        level(
            "ticket message not posted",
            ticket=message.ticket_id,
            kind=message.kind,
            attempts=attempts,
            error=error[:500],
            next_attempt_in_s=round(delay, 1),
        )
        return updated or replace(message, attempts=attempts, last_error=error)

    # --- the request's trace ------------------------------------------------------------------

    def annotate(self, ticket: StoredTicket) -> None:
        """The ticket's current outcome into its request's trace (in the background)."""
        if self._notes is not None:
            self._notes.annotate(ticket.request_id, {"ticket": ticket.outcome()})

    async def counts(self) -> dict[str, dict[str, int]]:
        """Deliveries by state across every replica (for metrics and operators)."""
        return await self.store.counts()
