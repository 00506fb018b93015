"""Our own ticket format: a signed JSON POST to a configured URL, for help desks we do not
speak natively (README, "Webhook").

The request: ``POST <url>`` with ``Content-Type: application/json``, ``Idempotency-Key:
<uid>`` (the same on every retry of one ticket: receivers keep the first) and our signature
headers (``adapters/tickets/signing.py``: HMAC-SHA256 over "<timestamp>." + body, hex,
``v1=``; receivers reject it when the timestamp is more than 5 minutes old). The body::

    {"type": "ticket.created", "id": "AD-7", "uid": "…", "sent_at": "…", "ticket": {content}}

Any 2xx is a delivery; an answer ``{"key": "DESK-42", "url": "https://…"}`` names the
ticket (else it is known as ``AD-7``). 429 with Retry-After, 5xx and timeouts are retried.

Loop-back: the receiver posts ``{"id": "<event id>", "ticket": "<key or AD-n>", "type":
"comment" | "status", "public": true, "author": "…", "text": "…", "status": "…",
"resolved": false}`` to ``/hooks/tickets/webhook``, signed the same way with the same secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.tickets import signing
from adapters.tickets.http import TicketHttp, require
from core.handoff.types import (
    AgentEvent,
    Delivered,
    EventKind,
    StoredTicket,
    utcnow,
)

NAME = "webhook"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    secret: str | None = None
    secret_env: str = "ANSWERDESK_WEBHOOK_SECRET"


class WebhookSystem:
    name = NAME

    def __init__(self, config: WebhookConfig, http: TicketHttp) -> None:
        self._config = config
        self._http = http

    async def create(self, ticket: StoredTicket) -> Delivered:
        require((self._config.secret, self._config.secret_env))
        body = json.dumps(
            {
                "type": "ticket.created",
                "id": ticket.handoff,
                "uid": ticket.uid,
                "sent_at": utcnow().isoformat(),
                "ticket": ticket.content,
            },
            ensure_ascii=False,
        ).encode()
        answer = await self._http.call(
            "POST",
            self._config.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": ticket.uid,
                **signing.sign(self._config.secret, body),
            },
        )
        named = answer if isinstance(answer, dict) else {}
        key = str(named.get("key") or ticket.handoff)[:64]
        url = named.get("url") if isinstance(named.get("url"), str) else None
        return Delivered(key, ticket.handoff, url)

    async def probe(self) -> str:
        """Reachable and authorised: a signed `{"type": "ping"}`, which a receiver answers
        with any 2xx and no ticket (pre-launch check)."""
        require((self._config.secret, self._config.secret_env))
        body = json.dumps({"type": "ping", "sent_at": utcnow().isoformat()}).encode()
        await self._http.call(
            "POST",
            self._config.url,
            data=body,
            headers={"Content-Type": "application/json", **signing.sign(self._config.secret, body)},
        )
        return f"the webhook receiver at {self._config.url} accepted a signed ping"

    async def close(self) -> None:
        await self._http.close()


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    return signing.verify(secret, headers, body)


def parse(payload: Mapping[str, Any]) -> list[AgentEvent]:
    ticket = str(payload.get("ticket") or "")
    event_id = str(payload.get("id") or "")
    kind = payload.get("type")
    if not ticket or not event_id or kind not in ("comment", "status"):
        raise ValueError("an event needs id, ticket and type (comment or status)")
    return [
        AgentEvent(
            NAME,
            ticket,
            EventKind(kind),
            event_id,
            public=payload.get("public", True) is not False,
            author=payload.get("author") or None,
            text=str(payload.get("text") or ""),
            status=payload.get("status") or None,
            resolved=bool(payload.get("resolved")),
        )
    ]
