"""Local ticket systems speaking their real wire formats, for the handoff tests: Jira Cloud
(REST v3), Zendesk (Tickets API), ServiceNow (Table API, OAuth client credentials) and a
receiver of our signed webhook. Each runs in its own thread (like the Slack double), checks
credentials as the real system does (401 otherwise), validates what it is sent, records
every request, and can be told to fail:

- :meth:`fail` queues answers for the next *creations* (FIFO): ``"500"``, ``"503"``,
  ``"429:<seconds>"`` (with ``Retry-After``), ``"400"`` (a validation error), or
  ``"500-after"`` (the ticket IS created, then 500 is answered: an unclear failure);
- :meth:`down` stops the server (connections are refused), :meth:`up` brings it back on
  the same port.

They also sign loop-back requests INTO the service the way each system does
(``*_hook`` functions), written here independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.support.threaded import ThreadedServer

_FAILURE = re.compile(r"^(500|503|400|500-after|429:\d+)$")


class TicketSystemDouble(ThreadedServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self._failures: deque[str] = deque()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail(self, *behaviours: str) -> None:
        for behaviour in behaviours:
            if not _FAILURE.match(behaviour):
                raise ValueError(f"unknown failure {behaviour!r}")
        with self._lock:
            self._failures.extend(behaviours)

    def down(self) -> None:
        self.stop()

    def up(self) -> None:
        self.start()

    def requests_to(self, method: str, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["method"] == method and r["path"] == path]

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw and request.content_type == "application/json" else None
        except ValueError:
            body = None
        record = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "raw": raw,
            "json": body,
            "form": dict(parse_qsl(raw.decode()))
            if request.content_type.endswith("urlencoded")
            else {},
            "at": time.monotonic(),
        }
        with self._lock:
            self.requests.append(record)
        return await self.route(request, record)

    async def route(self, request: web.Request, record: dict[str, Any]) -> web.Response:
        raise NotImplementedError

    def _next_failure(self) -> str | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _failure_response(self, failure: str) -> web.Response:
        if failure.startswith("429:"):
            return web.json_response(
                {"error": "rate limited"}, status=429, headers={"Retry-After": failure[4:]}
            )
        return web.json_response({"error": f"scripted {failure}"}, status=int(failure[:3]))


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


# --- Jira Cloud -----------------------------------------------------------------------------


def _adf_ok(node: Any) -> bool:
    """What Jira's ADF validation rejects: unknown shapes and empty text nodes."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return False
    if node["type"] == "text":
        return isinstance(node.get("text"), str) and node["text"] != ""
    return all(_adf_ok(child) for child in node.get("content", []))


def adf_text(node: Any) -> str:
    if isinstance(node, dict):
        if node.get("type") == "text":
            return node["text"]
        return " ".join(adf_text(child) for child in node.get("content", []))
    return ""


class JiraDouble(TicketSystemDouble):
    def __init__(
        self, email: str = "bot@acme.example", token: str = "jira-token", project: str = "HELP"
    ):
        super().__init__()
        self.email, self.token, self.project = email, token, project
        self._numbers = itertools.count(1)

    async def route(self, request: web.Request, record: dict[str, Any]) -> web.Response:
        if _basic(request) != (self.email, self.token):
            return web.json_response({"errorMessages": ["Unauthorized"]}, status=401)
        if request.method == "POST" and request.path == "/rest/api/3/issue":
            return self._create(record["json"] or {})
        if request.method == "POST" and request.path == "/rest/api/3/search/jql":
            match = re.fullmatch(r'labels = "([^"]+)"', (record["json"] or {}).get("jql", ""))
            label = match.group(1) if match else None
            with self._lock:
                issues = [
                    {"id": i["id"], "key": i["key"]}
                    for i in self.created
                    if label in i["fields"].get("labels", [])
                ]
            return web.json_response({"issues": issues[:1], "isLast": True})
        return web.json_response({"errorMessages": ["not found"]}, status=404)

    def _create(self, body: dict[str, Any]) -> web.Response:
        failure = self._next_failure()
        if failure and failure != "500-after":
            return self._failure_response(failure)
        fields = body.get("fields") or {}
        errors = {}
        if (fields.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        if not (fields.get("issuetype") or {}).get("name"):
            errors["issuetype"] = "Specify an issue type"
        summary = fields.get("summary")
        if not summary or "\n" in summary or len(summary) > 255:
            errors["summary"] = "You must specify a summary of the issue."
        description = fields.get("description")
        if not (
            isinstance(description, dict)
            and description.get("type") == "doc"
            and description.get("version") == 1
            and _adf_ok(description)
        ):
            errors["description"] = "Operation value must be an Atlassian Document."
        if errors or failure == "400":
            return web.json_response(
                {"errorMessages": [], "errors": errors or {"x": "scripted"}}, status=400
            )
        number = next(self._numbers)
        issue = {"id": str(10000 + number), "key": f"{self.project}-{number}", "fields": fields}
        with self._lock:
            self.created.append(issue)
        if failure == "500-after":
            return web.json_response({"errorMessages": ["internal"]}, status=500)
        return web.json_response(
            {
                "id": issue["id"],
                "key": issue["key"],
                "self": f"{self.url}/rest/api/3/issue/{issue['id']}",
            },
            status=201,
        )


def jira_hook(secret: str, payload: dict[str, Any] | bytes) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature": f"sha256={digest}"}


def jira_comment(key: str, comment_id: str, text: str, *, public: bool = True) -> dict[str, Any]:
    """A comment_created event as Jira Service Management sends it (v2 body: a string)."""
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "comment_created",
        "comment": {
            "id": comment_id,
            "author": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Alex Agent"},
            "body": text,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "jsdPublic": public,
        },
        "issue": {"id": "10001", "key": key, "fields": {"summary": "x"}},
    }


def jira_status(key: str, changelog_id: str, status: str, category: str) -> dict[str, Any]:
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"displayName": "Alex Agent"},
        "issue": {
            "id": "10001",
            "key": key,
            "fields": {"status": {"name": status, "statusCategory": {"key": category}}},
        },
        "changelog": {
            "id": changelog_id,
            "items": [
                {"field": "status", "fieldtype": "jira", "fromString": "Open", "toString": status}
            ],
        },
    }


# --- Zendesk ----------------------------------------------------------------------------------


class ZendeskDouble(TicketSystemDouble):
    def __init__(self, email: str = "bot@acme.example", token: str = "zd-token"):
        super().__init__()
        self.email, self.token = email, token
        self._ids = itertools.count(35436)
        self._idempotent: dict[str, dict[str, Any]] = {}

    async def route(self, request: web.Request, record: dict[str, Any]) -> web.Response:
        if _basic(request) != (f"{self.email}/token", self.token):
            return web.json_response({"error": "Couldn't authenticate you"}, status=401)
        if request.method == "POST" and request.path == "/api/v2/tickets.json":
            return self._create(record["json"] or {}, request.headers.get("Idempotency-Key"))
        if request.method == "GET" and request.path == "/api/v2/users/me.json":
            return web.json_response({"user": {"id": 9001, "email": self.email, "role": "agent"}})
        return web.json_response({"error": "InvalidEndpoint"}, status=404)

    def _create(self, body: dict[str, Any], key: str | None) -> web.Response:
        failure = self._next_failure()
        if failure and failure != "500-after":
            return self._failure_response(failure)
        with self._lock:
            if key and key in self._idempotent:  # the first answer, again
                return web.json_response(
                    {"ticket": self._idempotent[key]},
                    status=201,
                    headers={"x-idempotency-lookup": "hit"},
                )
        ticket = body.get("ticket") or {}
        comment = ticket.get("comment") or {}
        requester = ticket.get("requester")
        if not comment.get("body") or failure == "400" or (requester and not requester.get("name")):
            return web.json_response(
                {"error": "RecordInvalid", "details": {"base": [{"description": "invalid"}]}},
                status=422,
            )
        ticket_id = next(self._ids)
        stored = {
            **ticket,
            "id": ticket_id,
            "url": f"{self.url}/api/v2/tickets/{ticket_id}.json",
            "status": "new",
        }
        with self._lock:
            self.created.append(stored)
            if key:
                self._idempotent[key] = stored
        if failure == "500-after":
            return web.json_response({"error": "internal"}, status=500)
        return web.json_response(
            {"ticket": stored}, status=201, headers={"x-idempotency-lookup": "miss"}
        )


def zendesk_hook(
    secret: str, payload: dict[str, Any], *, timestamp: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    ts = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), ts.encode() + body, hashlib.sha256).digest()
    return body, {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
    }


def zendesk_comment(
    ticket_id: str, comment_id: int, text: str, *, public: bool, staff: bool = True
) -> dict[str, Any]:
    return {
        "account_id": 22129848,
        "detail": {"id": ticket_id, "status": "OPEN", "subject": "x"},
        "event": {
            "comment": {
                "id": comment_id,
                "body": text,
                "is_public": public,
                "author": {"id": 8447388090495, "is_staff": staff, "name": "Sam Support"},
            }
        },
        "id": str(uuid.uuid4()),
        "subject": f"zen:ticket:{ticket_id}",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
        "type": "zen:event-type:ticket.comment_added",
        "zendesk_event_version": "2022-11-06",
    }


def zendesk_status(ticket_id: str, current: str) -> dict[str, Any]:
    return {
        "account_id": 22129848,
        "detail": {"id": ticket_id, "status": current},
        "event": {"current": current, "previous": "OPEN"},
        "id": str(uuid.uuid4()),
        "subject": f"zen:ticket:{ticket_id}",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
        "type": "zen:event-type:ticket.status_changed",
        "zendesk_event_version": "2022-11-06",
    }


# --- ServiceNow -------------------------------------------------------------------------------


class ServiceNowDouble(TicketSystemDouble):
    def __init__(
        self,
        user: str = "svc.answerdesk",
        password: str = "snow-pass",
        client_id: str = "snow-client",
        client_secret: str = "snow-client-secret",
        users: dict[str, str] | None = None,  # email → sys_id
    ):
        super().__init__()
        self.user, self.password = user, password
        self.client_id, self.client_secret = client_id, client_secret
        self.users = users or {}
        self.tokens: set[str] = set()
        self._numbers = itertools.count(10001)

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[7:] in self.tokens
        return _basic(request) == (self.user, self.password)

    async def route(self, request: web.Request, record: dict[str, Any]) -> web.Response:
        if request.method == "POST" and request.path == "/oauth_token.do":
            form = record["form"]
            if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != (
                "client_credentials",
                self.client_id,
                self.client_secret,
            ):
                return web.json_response({"error": "access_denied"}, status=401)
            token = uuid.uuid4().hex
            self.tokens.add(token)
            return web.json_response(
                {"access_token": token, "token_type": "Bearer", "expires_in": 1799}
            )
        if not self._authorised(request):
            return web.json_response(
                {"error": {"message": "User Not Authenticated"}, "status": "failure"}, status=401
            )
        query = request.query.get("sysparm_query", "")
        if request.method == "GET" and request.path == "/api/now/table/sys_user":
            email = query.removeprefix("email=")
            found = [{"sys_id": self.users[email]}] if email in self.users else []
            return web.json_response({"result": found})
        if request.method == "GET" and request.path == "/api/now/table/incident":
            correlation = query.removeprefix("correlation_id=")
            with self._lock:
                found = [
                    {"sys_id": i["sys_id"], "number": i["number"]}
                    for i in self.created
                    if i.get("correlation_id") == correlation
                ]
            return web.json_response({"result": found[:1]})
        if request.method == "POST" and request.path == "/api/now/table/incident":
            return self._create(record["json"] or {})
        return web.json_response({"error": {"message": "Invalid table"}}, status=400)

    def _create(self, body: dict[str, Any]) -> web.Response:
        failure = self._next_failure()
        if failure and failure != "500-after":
            return self._failure_response(failure)
        if not body.get("short_description") or failure == "400":
            return web.json_response({"error": {"message": "Mandatory field missing"}}, status=400)
        record = {
            **body,
            "sys_id": uuid.uuid4().hex,
            "number": f"INC00{next(self._numbers)}",
            "state": "1",
        }
        with self._lock:
            self.created.append(record)
        if failure == "500-after":
            return web.json_response({"error": {"message": "internal"}}, status=500)
        return web.json_response({"result": record}, status=201)


def servicenow_hook(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return json.dumps(payload).encode(), {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {secret}",
    }


# --- our webhook, received ----------------------------------------------------------------------


def verify_answerdesk_signature(
    secret: str, headers: dict[str, str], body: bytes, now: float | None = None
) -> bool:
    """A receiver's check, as the README describes it: HMAC-SHA256 over
    "<X-Answerdesk-Timestamp>." + raw body, hex, after "v1="; at most 5 minutes old."""
    timestamp = headers.get("X-Answerdesk-Timestamp", "")
    signature = headers.get("X-Answerdesk-Signature", "")
    if not timestamp.isdigit() or not signature.startswith("v1="):
        return False
    if abs((now or time.time()) - int(timestamp)) > 300:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, signature[3:])


class WebhookReceiver(TicketSystemDouble):
    """A help desk receiving our signed tickets at ``/tickets``: verifies them (401 when the
    signature does not hold), keeps one ticket per Idempotency-Key, answers a key; answers a
    signed ``{"type": "ping"}`` with 200 and creates nothing."""

    def __init__(self, secret: str = "webhook-secret", name_keys: bool = True):
        super().__init__()
        self.secret = secret
        self.name_keys = name_keys
        self._numbers = itertools.count(1)
        self._by_key: dict[str, dict[str, Any]] = {}

    async def route(self, request: web.Request, record: dict[str, Any]) -> web.Response:
        if request.method != "POST" or request.path != "/tickets":
            return web.json_response({"error": "not found"}, status=404)
        if not verify_answerdesk_signature(self.secret, record["headers"], record["raw"]):
            return web.json_response({"error": "bad signature"}, status=401)
        if (record["json"] or {}).get("type") == "ping":  # a reachability check: no ticket
            return web.json_response({"ok": True})
        failure = self._next_failure()
        if failure and failure != "500-after":
            return self._failure_response(failure)
        idempotency = request.headers.get("Idempotency-Key", "")
        with self._lock:
            stored = self._by_key.get(idempotency)
            if stored is None:
                stored = {"key": f"DESK-{next(self._numbers)}", "body": json.loads(record["raw"])}
                self._by_key[idempotency] = stored
                self.created.append(stored)
        if failure == "500-after":
            return web.json_response({"error": "internal"}, status=500)
        if not self.name_keys:
            return web.Response(status=202)
        return web.json_response(
            {"key": stored["key"], "url": f"{self.url}/desk/{stored['key']}"}, status=201
        )


def answerdesk_hook(
    secret: str, payload: dict[str, Any], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-Answerdesk-Timestamp": ts,
        "X-Answerdesk-Signature": f"v1={digest}",
    }
