"""Zendesk Support, Tickets API.

Create: ``POST /api/v2/tickets.json`` (API token auth: ``{email}/token`` and the token) with
the requester's name and email, a subject, the first comment (private: it carries the
transcript, the request id and the trace link, for agents), tags and ``external_id``, and
an ``Idempotency-Key`` header (the handoff's uid): Zendesk answers a retried creation with
the ticket the first one made. Answer: ``201 {"ticket": {"id": 35436, …}}``.

Loop-back: a webhook subscribed to the ticket events "Comment added"
(``zen:event-type:ticket.comment_added``) and "Status changed"
(``zen:event-type:ticket.status_changed``), signed: ``X-Zendesk-Webhook-Signature`` =
base64(HMAC-SHA256(timestamp + body)) with ``X-Zendesk-Webhook-Signature-Timestamp``. Only
public comments by staff reach the chat (the requester's own comments and private notes do
not); "solved" and "closed" resolve the handoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from adapters.tickets.http import TicketHttp, answer_field, require
from adapters.tickets.render import plain_text
from adapters.tickets.signing import verify_zendesk
from core.handoff.types import AgentEvent, Delivered, DeliveryError, EventKind, StoredTicket

NAME = "zendesk"
RESOLVED = {"solved", "closed"}


@dataclass(frozen=True, slots=True)
class ZendeskConfig:
    base_url: str
    email: str | None = None
    token: str | None = None
    email_env: str = "ZENDESK_EMAIL"
    token_env: str = "ZENDESK_API_TOKEN"
    tags: tuple[str, ...] = ("answerdesk",)


class ZendeskSystem:
    name = NAME

    def __init__(self, config: ZendeskConfig, http: TicketHttp) -> None:
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._http = http

    async def create(self, ticket: StoredTicket) -> Delivered:
        config = self._config
        require((config.email, config.email_env), (config.token, config.token_env))
        content = ticket.content
        body: dict[str, Any] = {
            "subject": content.get("summary", "Answerdesk handoff"),
            "comment": {"body": plain_text(content), "public": False},
            "tags": list(config.tags),
            "external_id": ticket.uid,
        }
        asker = content.get("asker") or {}
        if asker.get("email"):
            body["requester"] = {
                "name": asker.get("name") or asker["email"],
                "email": asker["email"],
            }
        answer = await self._http.call(
            "POST",
            f"{self._base}/api/v2/tickets.json",
            json_body={"ticket": body},
            headers={"Idempotency-Key": ticket.uid},
            auth=aiohttp.BasicAuth(f"{config.email}/token", config.token),
        )
        ticket_id = str(answer_field(answer, "ticket", "id"))
        return Delivered(ticket_id, ticket_id, f"{self._base}/agent/tickets/{ticket_id}")

    async def probe(self) -> str:
        """Reachable and authorised: the account the token belongs to (pre-launch check)."""
        config = self._config
        require((config.email, config.email_env), (config.token, config.token_env))
        answer = await self._http.call(
            "GET",
            f"{self._base}/api/v2/users/me.json",
            auth=aiohttp.BasicAuth(f"{config.email}/token", config.token or ""),
        )
        if not answer_field(answer, "user").get("id"):  # Zendesk's anonymous user
            raise DeliveryError("GET /api/v2/users/me.json: not signed in", permanent=True)
        return f"Zendesk at {self._base} knows {config.email}"

    async def close(self) -> None:
        await self._http.close()


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    return verify_zendesk(secret, headers, body)


def parse(payload: Mapping[str, Any]) -> list[AgentEvent]:
    kind = payload.get("type")
    ticket = str((payload.get("detail") or {}).get("id") or "")
    event = payload.get("event") or {}
    event_id = str(payload.get("id") or "")
    if not ticket or not event_id:
        return []
    at = _when(payload.get("time"))
    if kind == "zen:event-type:ticket.comment_added":
        comment = event.get("comment") or {}
        author = comment.get("author") or {}
        if not author.get("is_staff"):
            return []  # the requester's own words (the first comment among them)
        return [
            AgentEvent(
                NAME,
                ticket,
                EventKind.COMMENT,
                event_id,
                public=bool(comment.get("is_public")),
                author=author.get("name"),
                text=str(comment.get("body") or ""),
                at=at,
            )
        ]
    if kind == "zen:event-type:ticket.status_changed":
        status = str(event.get("current") or "")
        return [
            AgentEvent(
                NAME,
                ticket,
                EventKind.STATUS,
                event_id,
                status=status.capitalize(),
                resolved=status.lower() in RESOLVED,
                at=at,
            )
        ]
    return []


def _when(value: Any) -> datetime | None:
    """Zendesk's event time: 2025-01-08T14:25:30.123456789Z (nanoseconds)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    head, _, fraction = value.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]}+00:00")
    except ValueError:
        return None
