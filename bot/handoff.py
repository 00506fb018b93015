"""Composition of the handoff: the ticket system `handoff.provider` names (credentials from
the environment), the outbox, what tickets say, where announcements go, and the loop-back."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.tickets import DbTicketQueue
from adapters.slack.links import thread_link
from adapters.teams.links import conversation_link
from adapters.tickets.builtin import BuiltinQueue
from adapters.tickets.hooks import LoopBack, loop_back
from adapters.tickets.http import TicketHttp
from bot.settings import HandoffSettings, Settings
from core.answering.memory import ConversationMemory
from core.conversation.outbound import Outbound
from core.conversation.types import ConversationRef
from core.handoff.content import ContentBuilder, ContentConfig
from core.handoff.events import TicketDesk, TicketEvents
from core.handoff.ports import TicketSystem, TraceNotes
from core.handoff.service import AnnounceTo, DeliveryConfig, Handoffs
from core.handoff.types import StoredTicket


@dataclass
class HandoffParts:
    handoffs: Handoffs  # the TicketProvider the answer flow and the chat use
    events: TicketEvents  # agents' work coming back
    desk: TicketDesk  # the built-in queue's agent side (CLI, admin console)
    loop_back: LoopBack | None  # the configured provider's verifier, when it has a secret


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def ticket_system(settings: HandoffSettings, url_base: str | None) -> TicketSystem:
    http = TicketHttp(settings.delivery.timeout_s)
    if settings.provider == "jira":
        from adapters.tickets.jira import JiraConfig, JiraSystem

        j = settings.jira
        return JiraSystem(
            JiraConfig(
                base_url=j.base_url or "",
                project_key=j.project_key or "",
                issue_type=j.issue_type,
                email=_reveal(j.email),
                token=_reveal(j.token),
                email_env=j.email_env,
                token_env=j.token_env,
                requester_field=j.requester_field,
                labels=tuple(j.labels),
            ),
            http,
        )
    if settings.provider == "zendesk":
        from adapters.tickets.zendesk import ZendeskConfig, ZendeskSystem

        z = settings.zendesk
        return ZendeskSystem(
            ZendeskConfig(
                base_url=z.base_url or "",
                email=_reveal(z.email),
                token=_reveal(z.token),
                email_env=z.email_env,
                token_env=z.token_env,
                tags=tuple(z.tags),
            ),
            http,
        )
    if settings.provider == "servicenow":
        from adapters.tickets.servicenow import ServiceNowConfig, ServiceNowSystem

        s = settings.servicenow
        return ServiceNowSystem(
            ServiceNowConfig(
                base_url=s.base_url or "",
                user=_reveal(s.user),
                password=_reveal(s.password),
                user_env=s.user_env,
                password_env=s.password_env,
                oauth=bool(s.client_id_env and s.client_secret_env),
                client_id=_reveal(s.client_id),
                client_secret=_reveal(s.client_secret),
                client_id_env=s.client_id_env or "SNOW_CLIENT_ID",
                client_secret_env=s.client_secret_env or "SNOW_CLIENT_SECRET",
                assignment_group=s.assignment_group,
            ),
            http,
        )
    if settings.provider == "webhook":
        from adapters.tickets.webhook import WebhookConfig, WebhookSystem

        w = settings.webhook
        return WebhookSystem(
            WebhookConfig(url=w.url or "", secret=_reveal(w.secret), secret_env=w.secret_env),
            http,
        )
    return BuiltinQueue(url_base)


def loop_back_secret(settings: HandoffSettings) -> tuple[str | None, str | None]:
    """(the secret that authenticates the provider's loop-back, its variable's name)."""
    sections = {
        "jira": (settings.jira.webhook_secret, settings.jira.webhook_secret_env),
        "zendesk": (settings.zendesk.webhook_secret, settings.zendesk.webhook_secret_env),
        "servicenow": (settings.servicenow.webhook_secret, settings.servicenow.webhook_secret_env),
        "webhook": (settings.webhook.secret, settings.webhook.secret_env),
    }
    secret, variable = sections.get(settings.provider, (None, None))
    return _reveal(secret), variable


def announce_to(channel: str | None) -> AnnounceTo | None:
    """New tickets are announced in a Slack channel: the asker's workspace's when the
    handoff came from Slack (multi-workspace installs post with that workspace's token)."""
    if not channel:
        return None

    def target(ticket: StoredTicket) -> ConversationRef:
        origin = ticket.origin
        if origin is not None and origin.platform == "slack":
            return ConversationRef("slack", origin.tenant, channel, extra=origin.extra)
        return ConversationRef("slack", "", channel)

    return target


def build_handoff(
    settings: Settings,
    engine: AsyncEngine,
    memory: ConversationMemory,
    outbound: Outbound,
    notes: TraceNotes,
) -> HandoffParts:
    h = settings.handoff
    d = h.delivery
    content = ContentBuilder(
        memory,
        ContentConfig(
            pii_redaction=settings.policy.pii_redaction,
            redaction=settings.tracing.redaction,
            memory_turns=settings.memory.turns,
            memory_max_age_s=settings.memory.max_age_s,
            url_base=settings.tickets.url_base,
        ),
        {"slack": thread_link, "teams": conversation_link},
    )
    handoffs = Handoffs(
        DbTicketQueue(engine),
        ticket_system(h, settings.tickets.url_base),
        content,
        outbound=outbound,
        notes=notes,
        config=DeliveryConfig(
            timeout_s=d.timeout_s,
            inline_timeout_s=d.inline_timeout_s,
            backoff_s=d.backoff_s,
            max_backoff_s=d.max_backoff_s,
            failing_after=d.failing_after,
            poll_s=d.poll_s,
            lease_s=d.lease_s,
            batch=d.batch,
        ),
        announce_to=announce_to(h.announce_channel),
    )
    events = TicketEvents(handoffs)
    secret, _ = loop_back_secret(h)
    return HandoffParts(
        handoffs, events, TicketDesk(handoffs, events), loop_back(h.provider, secret)
    )
