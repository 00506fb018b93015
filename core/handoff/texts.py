"""What people read about a handoff (markdown), wherever it is shown."""

from __future__ import annotations

from core.tickets import DELIVERED, TicketRef

PROVIDER_NAMES = {
    "builtin": "the help desk queue",
    "jira": "Jira",
    "zendesk": "Zendesk",
    "servicenow": "ServiceNow",
    "webhook": "the help desk",
}
MAX_AGENT_TEXT = 2800  # an agent's comment in a chat message (Slack sections hold 3000)


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def ticket_label(key: str, url: str | None) -> str:
    return f"[{key}]({url})" if url else key


def handoff_sentence(ref: TicketRef) -> str:
    """The end of a handoff answer: which ticket, or that the request is queued."""
    if ref.delivery != DELIVERED or not ref.id:
        return (
            f"Your request is queued: {provider_name(ref.provider)} can't be reached right "
            "now, and the ticket number will follow here as soon as the ticket is open."
        )
    label = ticket_label(ref.id, ref.url)
    if ref.existing:
        return f"This conversation already has ticket {label} open; a person will follow up."
    return f"A person will follow up — ticket {label}."


def button_notice(ref: TicketRef) -> str:
    """What the thread is told after "talk to a human"."""
    return f"🙋 {handoff_sentence(ref)}"


def opened_later(key: str, url: str | None) -> str:
    return f"🎫 Your request is now ticket {ticket_label(key, url)}; a person will follow up here."


def agent_comment(key: str, author: str | None, text: str) -> str:
    body = text.strip()
    if len(body) > MAX_AGENT_TEXT:
        body = body[: MAX_AGENT_TEXT - 1].rstrip() + "…"
    return f"💬 **{author or 'An agent'}** on ticket {key}:\n{body}"


def status_change(key: str, status: str | None, resolved: bool, author: str | None) -> str:
    by = f" by {author}" if author else ""
    if resolved:
        return f"✅ Ticket {key} was resolved{by}. Ask again here if you need more help."
    return f"🔄 Ticket {key} is now **{status or 'updated'}**{by}."


def announcement(
    key: str, url: str | None, summary: str, asker: str, thread_link: str | None
) -> str:
    thread = f" · [thread]({thread_link})" if thread_link else ""
    return f"🎫 New ticket {ticket_label(key, url)} from {asker}: {summary}{thread}"
