"""ServiceNow, Table API ``incident``.

Create: ``POST /api/now/table/incident`` with ``short_description``, ``description`` (the
question, the answer given, the transcript), the caller (``caller_id``: the ``sys_user``
whose email is the asker's, looked up with ``GET /api/now/table/sys_user``; the email is
in the description either way), the configured ``assignment_group``, ``work_notes`` (for
agents only: asker identity, trigger, request id, trace and thread links) and
``correlation_id`` = the handoff's uid, by which a retry after an unclear failure finds the
incident it may already have created. Auth: basic (user and password), or OAuth client
credentials (``POST /oauth_token.do``) when a client id and secret are configured. Answer:
``201 {"result": {"sys_id": …, "number": "INC0010001", …}}``.

Loop-back: a business rule on ``incident`` (after update) posting our documented JSON with
``Authorization: Bearer <SNOW_WEBHOOK_SECRET>`` (see README). Additional comments
(``comments``) reach the chat; work notes (``work_notes``) never do; a state change is
posted, and Resolved (6) or Closed (7) resolves the handoff.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.tickets.http import TicketHttp, answer_field, require
from adapters.tickets.render import detail_lines, plain_text
from adapters.tickets.signing import verify_bearer
from core.handoff.types import AgentEvent, Delivered, EventKind, StoredTicket

NAME = "servicenow"
RESOLVED_STATES = {"6", "7"}  # Resolved, Closed
_JOURNAL_HEADER = re.compile(
    r"^\d{4}-\d{2}-\d{2} [\d:]{8} - .*\((?:Additional comments|Work notes)\)\s*$"
)


@dataclass(frozen=True, slots=True)
class ServiceNowConfig:
    base_url: str
    user: str | None = None
    password: str | None = None
    user_env: str = "SNOW_USER"
    password_env: str = "SNOW_PASSWORD"
    oauth: bool = False  # client credentials instead of basic auth
    client_id: str | None = None
    client_secret: str | None = None
    client_id_env: str = "SNOW_CLIENT_ID"
    client_secret_env: str = "SNOW_CLIENT_SECRET"
    assignment_group: str | None = None


class ServiceNowSystem:
    name = NAME

    def __init__(self, config: ServiceNowConfig, http: TicketHttp) -> None:
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._http = http
        self._token: tuple[str, float] | None = None  # OAuth access token, expiry

    async def _auth(self) -> tuple[aiohttp.BasicAuth | None, dict[str, str]]:
        config = self._config
        if config.oauth:
            require(
                (config.client_id, config.client_id_env),
                (config.client_secret, config.client_secret_env),
            )
            if self._token is None or self._token[1] <= time.monotonic():
                answer = await self._http.call(
                    "POST",
                    f"{self._base}/oauth_token.do",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": config.client_id,
                        "client_secret": config.client_secret,
                    },
                )
                expires = float((answer or {}).get("expires_in") or 1800)
                token = answer_field(answer, "access_token")
                self._token = (token, time.monotonic() + max(expires - 60, 30))
            return None, {"Authorization": f"Bearer {self._token[0]}"}
        require((config.user, config.user_env), (config.password, config.password_env))
        return aiohttp.BasicAuth(config.user or "", config.password or ""), {}

    async def _get(self, table: str, query: str, fields: str) -> dict[str, Any] | None:
        auth, headers = await self._auth()
        answer = await self._http.call(
            "GET",
            f"{self._base}/api/now/table/{table}",
            params={"sysparm_query": query, "sysparm_fields": fields, "sysparm_limit": "1"},
            auth=auth,
            headers=headers,
        )
        rows = (answer or {}).get("result") or []
        return rows[0] if rows else None

    async def create(self, ticket: StoredTicket) -> Delivered:
        if ticket.attempts > 0:
            found = await self._get("incident", f"correlation_id={ticket.uid}", "sys_id,number")
            if found:
                return self._delivered(found)
        content = ticket.content
        email = (content.get("asker") or {}).get("email")
        caller = await self._get("sys_user", f"email={email}", "sys_id") if email else None
        record: dict[str, Any] = {
            "short_description": content.get("summary", "Answerdesk handoff")[:160],
            "description": plain_text(content, details=False)
            + (f"\n\nRequester: {email}" if email else ""),
            "work_notes": "\n".join(detail_lines(content)),
            "correlation_id": ticket.uid,
            "correlation_display": "Answerdesk",
            "contact_type": "chat",
        }
        if caller and caller.get("sys_id"):
            record["caller_id"] = caller["sys_id"]
        if self._config.assignment_group:
            record["assignment_group"] = self._config.assignment_group
        auth, headers = await self._auth()
        answer = await self._http.call(
            "POST",
            f"{self._base}/api/now/table/incident",
            json_body=record,
            auth=auth,
            headers=headers,
        )
        return self._delivered(answer_field(answer, "result"))

    async def probe(self) -> str:
        """Reachable and authorised: a read of the incident table (pre-launch check)."""
        await self._get("incident", "correlation_id=answerdesk-preflight-probe", "sys_id")
        return f"ServiceNow at {self._base} lets us read incidents"

    def _delivered(self, record: Mapping[str, Any]) -> Delivered:
        number = answer_field(record, "number")
        sys_id = answer_field(record, "sys_id")
        return Delivered(number, sys_id, f"{self._base}/nav_to.do?uri=incident.do?sys_id={sys_id}")

    async def close(self) -> None:
        await self._http.close()


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    return verify_bearer(secret, headers)


def _journal(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    if lines and _JOURNAL_HEADER.match(lines[0]):
        lines = lines[1:]
    return "\n".join(lines).strip()


def parse(payload: Mapping[str, Any]) -> list[AgentEvent]:
    ticket = str(payload.get("number") or payload.get("sys_id") or "")
    if not ticket:
        return []
    base = f"{payload.get('sys_id') or ticket}:{payload.get('sys_mod_count', '')}"
    author = payload.get("updated_by") or None
    out = []
    for field, public in (("comments", True), ("work_notes", False)):
        text = _journal(payload.get(field))
        if text:
            out.append(
                AgentEvent(NAME, ticket, EventKind.COMMENT, f"{base}:{field}", public, author, text)
            )
    if payload.get("state_changed"):
        code = str(payload.get("state_code") or "")
        out.append(
            AgentEvent(
                NAME,
                ticket,
                EventKind.STATUS,
                f"{base}:state",
                author=author,
                status=str(payload.get("state") or code),
                resolved=code in RESOLVED_STATES,
            )
        )
    return out
