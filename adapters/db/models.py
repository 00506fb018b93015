"""SQLAlchemy models. The schema is owned by the Alembic migrations in `migrations/`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class IndexState(Base):
    """Small key/value facts about the index: catalog version, embedder name and dimension."""

    __tablename__ = "index_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AclSet(Base):
    """A distinct set of principals; chunks refer to it by its short key."""

    __tablename__ = "acl_sets"
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    principals: Mapped[list[str]] = mapped_column(JSON)


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    source: Mapped[str] = mapped_column(String(1024))
    root: Mapped[str] = mapped_column(String(1024), index=True)
    title: Mapped[str] = mapped_column(String(512))
    format: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64))
    acl_key: Mapped[str] = mapped_column(ForeignKey("acl_sets.key"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    chunk_count: Mapped[int] = mapped_column(Integer)
    # public | internal | confidential | restricted; its chunks inherit it (migration 0006)
    classification: Mapped[str] = mapped_column(String(16), default="internal")


class Passage(Base):
    """Unique chunk text under one ACL set: embedded and stored in the vector index once."""

    __tablename__ = "passages"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    acl_key: Mapped[str] = mapped_column(ForeignKey("acl_sets.key"), index=True)
    text: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)  # text with its title and headings


class Chunk(Base):
    """One chunk of one document; several chunks may share a passage (exact duplicates)."""

    __tablename__ = "chunks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    passage_id: Mapped[str] = mapped_column(ForeignKey("passages.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heading_path: Mapped[list[str]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    acl_key: Mapped[str] = mapped_column(ForeignKey("acl_sets.key"), index=True)


class IngestionRun(Base):
    __tablename__ = "ingestion_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    roots: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[dict] = mapped_column(JSON, default=dict)


class DirectoryUser(Base):
    __tablename__ = "directory_users"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DirectoryMembership(Base):
    __tablename__ = "directory_memberships"
    email: Mapped[str] = mapped_column(
        ForeignKey("directory_users.email", ondelete="CASCADE"), primary_key=True
    )
    group_name: Mapped[str] = mapped_column(String(256), primary_key=True)


class PlatformIdentity(Base):
    """A Slack or Teams identity mapped to a directory user."""

    __tablename__ = "platform_identities"
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email: Mapped[str] = mapped_column(
        ForeignKey("directory_users.email", ondelete="CASCADE"), index=True
    )


Index("ix_chunks_document_position", Chunk.document_id, Chunk.position)


class TraceRow(Base):
    """One answered request: the trace as JSON plus a few columns to find it by."""

    __tablename__ = "traces"
    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    asker: Mapped[str | None] = mapped_column(String(320), nullable=True)
    mode: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict] = mapped_column(JSON)


class CacheEntry(Base):
    """A cached answer and everything that decides whether it may be served again."""

    __tablename__ = "cache_entries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    release: Mapped[str] = mapped_column(String(32), index=True)
    question: Mapped[str] = mapped_column(Text)  # PII-redacted
    answer: Mapped[dict] = mapped_column(JSON)  # text, citations, tier, model, mode
    context: Mapped[list] = mapped_column(JSON)  # every chunk in the model's context
    request_id: Mapped[str] = mapped_column(String(32))
    hits: Mapped[int] = mapped_column(Integer, default=0)


class _Outbox:
    """Delivery bookkeeping of a row that a worker sends to a system that can be down: due
    at `next_attempt_at`, leased to one worker (`claimed_by` until `claimed_until`), retried
    with backoff; `failing` rows are retried too, and shown to operators."""

    delivery: Mapped[str] = mapped_column(String(16))  # queued | delivered | failing
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(512))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Ticket(_Outbox, Base):
    """A handoff: one per conversation while it is open (`open_key`, unique), whatever the
    provider; the built-in queue's tickets are AD-<id>."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    request_id: Mapped[str] = mapped_column(String(32), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    asker: Mapped[str | None] = mapped_column(String(320), nullable=True)
    question: Mapped[str] = mapped_column(Text)  # PII-redacted
    reason: Mapped[str] = mapped_column(String(256))
    provider: Mapped[str] = mapped_column(String(16), default="builtin")
    uid: Mapped[str | None] = mapped_column(String(32), unique=True)  # idempotency reference
    key: Mapped[str | None] = mapped_column(String(64), index=True)  # HELP-12, AD-7, …
    external_id: Mapped[str | None] = mapped_column(String(64))  # the provider's own id
    url: Mapped[str | None] = mapped_column(String(1024))
    open_key: Mapped[str | None] = mapped_column(String(400), unique=True)  # NULL once closed
    origin: Mapped[dict | None] = mapped_column(JSON)  # the chat thread's reference
    content: Mapped[dict | None] = mapped_column(JSON)  # what the ticket says (redacted)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TicketMessage(_Outbox, Base):
    """A chat message about a ticket (its key once known, an agent's reply, a status change,
    an announcement), posted by the delivery worker; `dedupe_key` keeps a redelivered
    webhook from posting twice."""

    __tablename__ = "ticket_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))  # opened | comment | status | announce
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    target: Mapped[dict] = mapped_column(JSON)  # a conversation reference
    text: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(32))  # the ticket's request
    author: Mapped[str | None] = mapped_column(String(256))
    message_id: Mapped[str | None] = mapped_column(String(128))


Index("ix_tickets_due", Ticket.delivery, Ticket.next_attempt_at)
Index("ix_ticket_messages_due", TicketMessage.delivery, TicketMessage.next_attempt_at)


class ConversationTurn(Base):
    __tablename__ = "conversation_turns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(256), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    question: Mapped[str] = mapped_column(Text)  # PII-redacted
    search_text: Mapped[str] = mapped_column(Text)  # the question as retrieval saw it
    mode: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(32))
    answer: Mapped[dict | None] = mapped_column(JSON)  # text, citations, notices (for tickets)


class SlackEvent(Base):
    """Events already taken: the primary key makes "answered once" hold across replicas."""

    __tablename__ = "slack_events"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SlackUser(Base):
    """Slack user → email, from users.info, kept for a while."""

    __tablename__ = "slack_users"
    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PostedAnswerRow(Base):
    """Where an answer was posted, on any platform, so its buttons, votes and later replies
    can act on it (any replica)."""

    __tablename__ = "posted_answers"
    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str] = mapped_column(String(128))
    conversation_id: Mapped[str] = mapped_column(String(256))
    thread_id: Mapped[str] = mapped_column(String(128))  # "" when the chat has no threads
    message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the asker's
    answer_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    asker_id: Mapped[str] = mapped_column(String(128))
    question: Mapped[str] = mapped_column(Text)  # PII-redacted
    extra: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


Index(
    "ix_posted_answers_thread",
    PostedAnswerRow.platform,
    PostedAnswerRow.conversation_id,
    PostedAnswerRow.thread_id,
)


class Feedback(Base):
    """One vote per voter and answer; the thread comes from the answer's record."""

    __tablename__ = "feedback"
    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    voter_id: Mapped[str] = mapped_column(String(320), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)  # +1 / -1
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConversationClaim(Base):
    """One-off decisions in a conversation (a person offered in a thread) and events being
    answered: the primary key makes "once" hold across replicas. An event's claim is leased
    (`owner` until `lease_until`, renewed while answering) and `completed_at` once answered;
    a lease that runs out first lets another replica take the event over with its
    `payload`, resuming in the message named by `note`. One-off claims have no lease."""

    __tablename__ = "conversation_claims"
    claim_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str | None] = mapped_column(String(96))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    note: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict | None] = mapped_column(JSON)


Index("ix_conversation_claims_open", ConversationClaim.completed_at, ConversationClaim.lease_until)


class AdminUser(Base):
    """A console login. Only a password hash is stored (`source`: env or demo)."""

    __tablename__ = "admin_users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AdminSession(Base):
    """A console session, found by the hash of the token its cookie carries."""

    __tablename__ = "admin_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin: Mapped[str] = mapped_column(ForeignKey("admin_users.name", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AdminLoginFailure(Base):
    """A refused login: counted per name and per client for rate limiting (all replicas)."""

    __tablename__ = "admin_login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    name: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))


class AdminAudit(Base):
    """Every console action, with the admin's name."""

    __tablename__ = "admin_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    admin: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    detail: Mapped[dict] = mapped_column(JSON)
    client: Mapped[str] = mapped_column(String(64))


class AdminKey(Base):
    """The console's cookie-signing key when none is given in the environment: generated
    once and shared by every replica."""

    __tablename__ = "admin_keys"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class TeamsConversation(Base):
    """The Bot Framework conversation reference of each conversation the bot answered in:
    what a proactive message (a late answer, later a ticket update) is sent with."""

    __tablename__ = "teams_conversations"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the ids
    tenant_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(Text)
    reference: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TeamsAnswerMessage(Base):
    """Which answer each of the bot's Teams messages shows: Teams' feedback loop names the
    rated message, the conversation layer's votes need the request."""

    __tablename__ = "teams_answer_messages"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the ids
    request_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Release(Base):
    """A release: the answer-changing settings, as validated content (README "Launch
    checklist and releases"). The id is the first 12 hex digits of the content hash."""

    __tablename__ = "releases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    note: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))  # file | configuration


class ReleaseStateRow(Base):
    """One row (id 1): the active release and the canary. Every replica polls it; every
    change bumps `version` first, which also serialises changes across processes."""

    __tablename__ = "release_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    active_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    canary_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    canary_share: Mapped[int] = mapped_column(Integer, default=0)
    active_event: Mapped[int | None] = mapped_column(Integer, nullable=True)  # in effect
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReleaseEvent(Base):
    """What happened to releases, by whom and why: creations, activations (with the gate's
    result, and any override with its reason), canaries, promotions, rollbacks, refusals.
    An event that made a release active names the release it replaced (`previous_id`) and
    the event that had made that one active (`previous_event`): a stack that rollbacks
    walk back down, one step each."""

    __tablename__ = "release_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    action: Mapped[str] = mapped_column(String(16))
    release_id: Mapped[str] = mapped_column(String(32), index=True)
    previous_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    previous_event: Mapped[int | None] = mapped_column(Integer, nullable=True)
    share: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    gate: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class PreflightRun(Base):
    """One run of the pre-launch checklist: running, then passed or failed with every
    item; the console shows the last one. Probe data carries the run id, so leftovers of a
    run that is not running any more (its process gone, or an hour old) are swept."""

    __tablename__ = "preflight_runs"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # running | passed | failed | interrupted
    actor: Mapped[str] = mapped_column(String(128))
    items: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # The process probing (the command's, or the service's it handed the probe to).
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EvalRun(Base):
    """One `answerdesk eval` run: its summary, regressions against the baseline and worst
    cases, so the console shows the evaluation history from any replica."""

    __tablename__ = "eval_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    library: Mapped[str] = mapped_column(String(200))
    config: Mapped[str] = mapped_column(String(200))
    cases: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[dict] = mapped_column(JSON)
    regressions: Mapped[list] = mapped_column(JSON)
    worst: Mapped[list] = mapped_column(JSON)
