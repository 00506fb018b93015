"""Jira Cloud / Jira Service Management, REST API v3.

Create: ``POST /rest/api/3/issue`` (basic auth: the account's email and an API token) with
the configured project and issue type, a one-line summary, the description in Atlassian
Document Format, labels (``answerdesk`` and ``answerdesk-<uid>``, by which a retry after an
unclear failure finds the issue it may already have created: ``POST
/rest/api/3/search/jql``), and the asker's email in a configured custom field. Answer:
``201 {"id": "10001", "key": "HELP-12", "self": …}``.

Loop-back: an admin webhook (System → WebHooks) with a secret, for "comment created" and
"issue updated"; Jira signs the raw body (``X-Hub-Signature: sha256=<hex>``). A comment
with ``jsdPublic: false`` (Service Management's "internal note") or a restricted
``visibility`` stays in Jira; a status change is posted, and a status in the "done"
category resolves the handoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from adapters.tickets.http import TicketHttp, answer_field, require
from adapters.tickets.signing import verify_hub_signature
from core.handoff.types import AgentEvent, Delivered, EventKind, StoredTicket

NAME = "jira"
DONE = {"done", "resolved", "closed"}


@dataclass(frozen=True, slots=True)
class JiraConfig:
    base_url: str
    project_key: str
    issue_type: str = "Task"
    email: str | None = None
    token: str | None = None
    email_env: str = "JIRA_EMAIL"
    token_env: str = "JIRA_API_TOKEN"
    requester_field: str | None = None
    labels: tuple[str, ...] = ("answerdesk",)


class JiraSystem:
    name = NAME

    def __init__(self, config: JiraConfig, http: TicketHttp) -> None:
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._http = http

    def _auth(self) -> aiohttp.BasicAuth:
        config = self._config
        require((config.email, config.email_env), (config.token, config.token_env))
        return aiohttp.BasicAuth(config.email or "", config.token or "")

    async def create(self, ticket: StoredTicket) -> Delivered:
        auth = self._auth()
        label = f"answerdesk-{ticket.uid}"
        if ticket.attempts > 0 and (found := await self._find(label, auth)) is not None:
            return found
        content = ticket.content
        fields: dict[str, Any] = {
            "project": {"key": self._config.project_key},
            "issuetype": {"name": self._config.issue_type},
            "summary": content.get("summary", "Answerdesk handoff")[:255],
            "description": description(content),
            "labels": [*self._config.labels, label],
        }
        email = (content.get("asker") or {}).get("email")
        if self._config.requester_field and email:
            fields[self._config.requester_field] = email
        answer = await self._http.call(
            "POST", f"{self._base}/rest/api/3/issue", json_body={"fields": fields}, auth=auth
        )
        return self._delivered(answer)

    async def probe(self) -> str:
        """Reachable and authorised: a search for a label no ticket has (pre-launch check)."""
        await self._find("answerdesk-preflight-probe", self._auth())
        return f"Jira at {self._base} answers searches as {self._config.email}"

    async def _find(self, label: str, auth: aiohttp.BasicAuth) -> Delivered | None:
        answer = await self._http.call(
            "POST",
            f"{self._base}/rest/api/3/search/jql",
            json_body={"jql": f'labels = "{label}"', "fields": ["key"], "maxResults": 1},
            auth=auth,
        )
        issues = (answer or {}).get("issues") or []
        return self._delivered(issues[0]) if issues else None

    def _delivered(self, issue: Any) -> Delivered:
        key = answer_field(issue, "key")
        return Delivered(key, str(issue.get("id") or "") or None, f"{self._base}/browse/{key}")

    async def close(self) -> None:
        await self._http.close()


# --- Atlassian Document Format -------------------------------------------------------------


def _text(text: str, href: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if href:
        node["marks"] = [{"type": "link", "attrs": {"href": href}}]
    return node


def _paragraph(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": [p for p in parts if p.get("text")]}


def _heading(text: str) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": 3}, "content": [_text(text)]}


def _list(kind: str, items: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "type": kind,
        "content": [{"type": "listItem", "content": [_paragraph(*item)]} for item in items],
    }


def _paragraphs(text: str) -> list[dict[str, Any]]:
    """Text nodes may not be empty; blank lines separate paragraphs."""
    blocks = [b.strip() for b in text.split("\n\n")]
    return [_paragraph(_text(b)) for b in blocks if b] or [_paragraph(_text("(empty)"))]


def description(content: Mapping[str, Any]) -> dict[str, Any]:
    """The ticket's content as an ADF document."""
    body: list[dict[str, Any]] = [_heading("Question"), *_paragraphs(content.get("question", ""))]
    answer = content.get("answer")
    if answer:
        body += [
            _heading(f"Answer given ({answer.get('mode')})"),
            *_paragraphs(answer.get("text", "")),
        ]
        citations = answer.get("citations") or []
        if citations:
            body.append(
                _list(
                    "orderedList",
                    [
                        [
                            _text(
                                f"[{c.get('n')}] {c.get('title')}"
                                + (f", page {c['page']}" if c.get("page") else ""),
                                c.get("url"),
                            ),
                            _text(f" — {c.get('source')}" if c.get("source") else ""),
                        ]
                        for c in citations
                    ],
                )
            )
        notices = answer.get("notices") or []
        if notices:
            body.append(
                _list(
                    "bulletList",
                    [[_text(f"⚠ {n.get('code')}: {n.get('message')}")] for n in notices],
                )
            )
    transcript = content.get("transcript") or []
    if transcript:
        body += [
            _heading("Transcript"),
            _list(
                "orderedList",
                [
                    [
                        _text(f"Asked: {t.get('question')}"),
                        _text(
                            f" — answered ({t.get('mode')}): {t['answer']}"
                            if t.get("answer")
                            else ""
                        ),
                    ]
                    for t in transcript
                ],
            ),
        ]
    asker = content.get("asker") or {}
    conversation = content.get("conversation") or {}
    identity = (
        f"{asker.get('platform')} user {asker.get('user_id')}" if asker.get("user_id") else ""
    )
    details = [
        [
            _text(f"Asker: {asker.get('email') or 'unknown'}"),
            _text(f" ({identity})" if identity else ""),
        ],
        [_text(f"Trigger: {content.get('trigger')}")],
        [_text("Request id: "), _text(str(content.get("request_id")), content.get("trace_url"))],
    ]
    if conversation.get("link"):
        details.append([_text("Chat thread", conversation["link"])])
    body += [_heading("Details"), _list("bulletList", details)]
    return {"type": "doc", "version": 1, "content": body}


def adf_text(node: Any) -> str:
    """The plain text of an ADF document (or a plain string, as v2 payloads carry)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    parts = [adf_text(child) for child in node.get("content") or []]
    separator = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
    return separator.join(p for p in parts if p)


# --- loop-back -----------------------------------------------------------------------------


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    return verify_hub_signature(secret, headers, body)


def parse(payload: Mapping[str, Any]) -> list[AgentEvent]:
    issue = payload.get("issue") or {}
    ticket = str(issue.get("key") or issue.get("id") or "")
    event = payload.get("webhookEvent")
    if not ticket:
        return []
    if event == "comment_created":
        comment = payload.get("comment") or {}
        restricted = bool(comment.get("visibility"))
        return [
            AgentEvent(
                NAME,
                ticket,
                EventKind.COMMENT,
                f"comment:{comment.get('id')}",
                public=comment.get("jsdPublic", True) is not False and not restricted,
                author=(comment.get("author") or {}).get("displayName"),
                text=adf_text(comment.get("body")),
                at=_when(comment.get("created")),
            )
        ]
    if event == "jira:issue_updated":
        changelog = payload.get("changelog") or {}
        for item in changelog.get("items") or []:
            if item.get("field") == "status":
                status = item.get("toString") or ""
                category = (
                    ((issue.get("fields") or {}).get("status") or {}).get("statusCategory") or {}
                ).get("key")
                return [
                    AgentEvent(
                        NAME,
                        ticket,
                        EventKind.STATUS,
                        f"status:{issue.get('id')}:{changelog.get('id')}",
                        author=(payload.get("user") or {}).get("displayName"),
                        status=status,
                        resolved=category == "done" or status.lower() in DONE,
                    )
                ]
    return []


def _when(value: Any) -> datetime | None:
    """Jira's timestamps: 2026-12-12T10:15:30.000+0000."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None
