"""A ticket's content (core/handoff/content.py) as plain text, for systems that take text
(Zendesk's first comment, ServiceNow's description and work notes)."""

from __future__ import annotations

from typing import Any


def answer_lines(content: dict[str, Any]) -> list[str]:
    answer = content.get("answer")
    if not answer:
        return []
    lines = [f"Answer given ({answer.get('mode')}, request {answer.get('request_id')}):"]
    lines.append(answer.get("text") or "(empty)")
    for citation in answer.get("citations", []):
        page = f", page {citation['page']}" if citation.get("page") else ""
        where = citation.get("url") or citation.get("source") or ""
        lines.append(f"  [{citation.get('n')}] {citation.get('title')}{page} — {where}")
    for notice in answer.get("notices", []):
        lines.append(f"  ⚠ {notice.get('code')}: {notice.get('message')}")
    return lines


def transcript_lines(content: dict[str, Any]) -> list[str]:
    turns = content.get("transcript") or []
    if not turns:
        return []
    lines = ["Transcript (oldest first):"]
    for number, turn in enumerate(turns, 1):
        lines.append(f"{number}. Asked: {turn.get('question')}")
        if turn.get("answer"):
            lines.append(f"   Answered ({turn.get('mode')}): {turn.get('answer')}")
    return lines


def detail_lines(content: dict[str, Any]) -> list[str]:
    """Who, where from, why: the facts agents look up."""
    asker = content.get("asker") or {}
    conversation = content.get("conversation") or {}
    identity = asker.get("platform") or "cli"
    if asker.get("user_id"):
        identity += f" user {asker['user_id']}"
    if asker.get("tenant"):
        identity += f" (tenant {asker['tenant']})"
    lines = [
        f"Asker: {asker.get('email') or 'unknown'} — {identity}",
        f"Trigger: {content.get('trigger')}",
        f"Request id: {content.get('request_id')}",
    ]
    if content.get("trace_url"):
        lines.append(f"Trace: {content['trace_url']}")
    if conversation.get("link"):
        lines.append(f"Chat thread: {conversation['link']}")
    return lines


def plain_text(content: dict[str, Any], *, details: bool = True) -> str:
    sections = [
        [f"Question: {content.get('question')}"],
        answer_lines(content),
        transcript_lines(content),
        detail_lines(content) if details else [],
    ]
    return "\n\n".join("\n".join(section) for section in sections if section)
