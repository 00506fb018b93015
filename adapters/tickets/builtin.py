"""The built-in queue: the ticket is the outbox row itself (AD-<n>), answered with
`answerdesk tickets reply|resolve` (or the admin console). Nothing to reach, never down."""

from __future__ import annotations

from core.handoff.types import Delivered, StoredTicket


class BuiltinQueue:
    name = "builtin"

    def __init__(self, url_base: str | None = None) -> None:
        self._url_base = url_base.rstrip("/") if url_base else None

    async def create(self, ticket: StoredTicket) -> Delivered:
        url = f"{self._url_base}/tickets/{ticket.handoff}" if self._url_base else None
        return Delivered(ticket.handoff, url=url)

    async def probe(self) -> str:
        return "the built-in queue lives in the service's database"

    async def close(self) -> None:
        return None
