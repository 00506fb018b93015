"""Releases (the answer-changing settings, versioned), their state and history, and the
pre-launch checklist's runs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
    )
    op.create_index("ix_releases_created_at", "releases", ["created_at"])
    state = op.create_table(
        "release_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("active_id", sa.String(32), nullable=True),
        sa.Column("canary_id", sa.String(32), nullable=True),
        sa.Column("canary_share", sa.Integer(), nullable=False),
        sa.Column("active_event", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, nullable=True),
    )
    # The one row every change locks first: it exists from the start.
    op.bulk_insert(state, [{"id": 1, "canary_share": 0, "version": 0}])
    op.create_table(
        "release_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("release_id", sa.String(32), nullable=False),
        sa.Column("previous_id", sa.String(32), nullable=True),
        sa.Column("previous_event", sa.Integer(), nullable=True),
        sa.Column("share", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("gate", sa.JSON(), nullable=True),
    )
    op.create_index("ix_release_events_at", "release_events", ["at"])
    op.create_index("ix_release_events_release_id", "release_events", ["release_id"])
    op.create_table(
        "preflight_runs",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("items", sa.JSON(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
    )
    op.create_index("ix_preflight_runs_started_at", "preflight_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("preflight_runs")
    op.drop_table("release_events")
    op.drop_table("release_state")
    op.drop_table("releases")
