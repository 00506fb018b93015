"""`POST /hooks/tickets/{provider}`: agents' work coming back from the configured ticket
system. The request is authenticated the way that system signs (verified over the raw body
before anything is parsed); anything else — another provider's name, no secret configured, a
missing or wrong signature, a stale timestamp — is 401 with a JSON body. A malformed body is
400; one over `server.body_limits.ticket_hooks` was refused (413) before this runs. Events
are handed to the core (`TicketEvents`), which queues what the thread should see and answers
at once: the chat is posted by the delivery worker, so a slow or down chat platform never
makes the ticket system retry or give up on its webhook."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import structlog
from aiohttp import web

from adapters.tickets import jira, servicenow, webhook, zendesk
from core.handoff.events import TicketEvents
from core.handoff.types import AgentEvent

log = structlog.get_logger()
FORMATS: dict[str, ModuleType] = {
    "jira": jira,
    "zendesk": zendesk,
    "servicenow": servicenow,
    "webhook": webhook,
}


@dataclass(frozen=True, slots=True)
class LoopBack:
    """The configured provider's loop-back: its verifier (with the secret) and parser."""

    provider: str
    verify: Callable[[Mapping[str, str], bytes], bool]
    parse: Callable[[Mapping[str, Any]], list[AgentEvent]]


def loop_back(provider: str, secret: str | None) -> LoopBack | None:
    """None when the provider has no loop-back (the built-in queue) or no secret is set."""
    module = FORMATS.get(provider)
    if module is None or not secret:
        return None
    return LoopBack(
        provider, lambda headers, body: module.verify(secret, headers, body), module.parse
    )


class TicketHooks:
    def __init__(self, loop: LoopBack | None, events: TicketEvents) -> None:
        self._loop = loop
        self._events = events

    async def handle(self, request: web.Request) -> web.Response:
        loop = self._loop
        provider = request.match_info.get("provider", "")
        body = await request.read()
        if loop is None or provider != loop.provider or not loop.verify(request.headers, body):
            log.warning("ticket hook refused", provider=provider[:32])
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            events = loop.parse(payload)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
        outcomes = []
        for event in events:
            applied = await self._events.apply(event)
            outcomes.append(
                {"ticket": event.ticket, "kind": str(event.kind), "outcome": applied.outcome}
            )
        log.info("ticket hook", provider=provider, events=[o["outcome"] for o in outcomes])
        return web.json_response({"ok": True, "events": outcomes})
