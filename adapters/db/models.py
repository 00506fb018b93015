"""SQLAlchemy models. The schema is owned by the Alembic migrations in `migrations/`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
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


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(32), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    asker: Mapped[str | None] = mapped_column(String(320), nullable=True)
    question: Mapped[str] = mapped_column(Text)  # PII-redacted
    reason: Mapped[str] = mapped_column(String(256))


class ConversationTurn(Base):
    __tablename__ = "conversation_turns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(256), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    question: Mapped[str] = mapped_column(Text)  # PII-redacted
    search_text: Mapped[str] = mapped_column(Text)  # the question as retrieval saw it
    mode: Mapped[str] = mapped_column(String(16))


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


class SlackRequest(Base):
    """Where an answer was posted, so its buttons can act on it later (any replica)."""

    __tablename__ = "slack_requests"
    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[str] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)  # PII-redacted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Feedback(Base):
    __tablename__ = "feedback"
    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(320), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)  # +1 / -1
    thread: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TeamsClaim(Base):
    """Teams activities already taken (and other one-off Teams keys): the primary key makes
    "answered once" hold across replicas and Teams' redeliveries."""

    __tablename__ = "teams_claims"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class TeamsConversation(Base):
    """The Bot Framework conversation reference of each conversation the bot answered in:
    what a proactive message (a late answer, later a ticket update) is sent with."""

    __tablename__ = "teams_conversations"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the ids
    tenant_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(Text)
    reference: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
