"""Handoff through ticket systems: `tickets` becomes the handoff outbox of every provider
(provider, key, delivery state and schedule, the thread's reference, the ticket's content,
first response and resolution times; one open ticket per conversation through the unique
`open_key`, instead of one ticket per request id); `ticket_messages` is the outbox of chat
messages about tickets; conversation turns keep their request id and answer (the ticket's
transcript). Existing tickets become delivered built-in tickets (AD-<id>).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# SQLite names the original inline UNIQUE(request_id) nothing; batch mode needs a name.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _outbox_columns() -> list[sa.Column]:
    return [
        sa.Column("delivery", sa.String(16), nullable=False, server_default="delivered"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=True),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("delivered_at", TZ, nullable=True),
    ]


def _request_id_constraint() -> str:
    """The name of UNIQUE(request_id): PostgreSQL's, or the one batch mode gives SQLite's
    unnamed constraint."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("tickets"):
        if constraint["column_names"] == ["request_id"]:
            return constraint["name"] or "uq_tickets_request_id"
    raise RuntimeError("tickets has no unique constraint on request_id")


def upgrade() -> None:
    with op.batch_alter_table("tickets", naming_convention=NAMING) as batch:
        batch.drop_constraint(_request_id_constraint(), type_="unique")
        batch.add_column(
            sa.Column("provider", sa.String(16), nullable=False, server_default="builtin")
        )
        for column in _outbox_columns():
            batch.add_column(column)
        batch.add_column(sa.Column("uid", sa.String(32), nullable=True))
        batch.add_column(sa.Column("key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("url", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("open_key", sa.String(400), nullable=True))
        batch.add_column(sa.Column("origin", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("content", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("first_response_at", TZ, nullable=True))
        batch.add_column(sa.Column("resolved_at", TZ, nullable=True))
    op.execute("UPDATE tickets SET key = 'AD-' || CAST(id AS VARCHAR(20)), delivered_at = created_at")
    # The newest open ticket of each conversation keeps it open; older ones stay open too,
    # but no longer hold the conversation (the old schema allowed several).
    op.execute(
        "UPDATE tickets SET open_key = COALESCE(conversation_id, 'request:' || request_id) "
        "WHERE status = 'open' AND id = (SELECT max(t.id) FROM tickets t WHERE t.status = "
        "'open' AND COALESCE(t.conversation_id, 'request:' || t.request_id) = "
        "COALESCE(tickets.conversation_id, 'request:' || tickets.request_id))"
    )
    op.create_index("ix_tickets_request_id", "tickets", ["request_id"])
    op.create_index("ix_tickets_key", "tickets", ["key"])
    op.create_index("ux_tickets_uid", "tickets", ["uid"], unique=True)
    op.create_index("ux_tickets_open_key", "tickets", ["open_key"], unique=True)
    op.create_index("ix_tickets_due", "tickets", ["delivery", "next_attempt_at"])

    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "ticket_id",
            sa.Integer(),
            sa.ForeignKey("tickets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=True),
        sa.Column("author", sa.String(256), nullable=True),
        sa.Column("message_id", sa.String(128), nullable=True),
        *_outbox_columns(),
    )
    op.create_index("ix_ticket_messages_ticket_id", "ticket_messages", ["ticket_id"])
    op.create_index("ux_ticket_messages_dedupe_key", "ticket_messages", ["dedupe_key"], unique=True)
    op.create_index("ix_ticket_messages_due", "ticket_messages", ["delivery", "next_attempt_at"])

    with op.batch_alter_table("conversation_turns") as batch:
        batch.add_column(sa.Column("request_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("answer", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_turns") as batch:
        batch.drop_column("answer")
        batch.drop_column("request_id")

    op.drop_table("ticket_messages")
    for index in (
        "ix_tickets_due",
        "ux_tickets_open_key",
        "ux_tickets_uid",
        "ix_tickets_key",
        "ix_tickets_request_id",
    ):
        op.drop_index(index, table_name="tickets")
    # The old schema had one ticket per request id: keep the first of each.
    op.execute(
        "DELETE FROM tickets WHERE id NOT IN (SELECT min(id) FROM tickets GROUP BY request_id)"
    )
    with op.batch_alter_table("tickets", naming_convention=NAMING) as batch:
        for column in (
            "resolved_at",
            "first_response_at",
            "content",
            "origin",
            "open_key",
            "url",
            "external_id",
            "key",
            "uid",
            *(c.name for c in _outbox_columns()),
            "provider",
        ):
            batch.drop_column(column)
        batch.create_unique_constraint("tickets_request_id_key", ["request_id"])
