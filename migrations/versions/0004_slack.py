"""Slack: taken events, user emails, posted requests; answer feedback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "slack_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_index("ix_slack_events_received_at", "slack_events", ["received_at"])
    op.create_table(
        "slack_users",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("fetched_at", TZ, nullable=False),
    )
    op.create_table(
        "slack_requests",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_slack_requests_thread_ts", "slack_requests", ["thread_ts"])
    op.create_table(
        "feedback",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(320), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("thread", sa.String(128), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_feedback_thread", "feedback", ["thread"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("slack_requests")
    op.drop_table("slack_users")
    op.drop_table("slack_events")
