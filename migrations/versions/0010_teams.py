"""Teams: stored conversation references, and which answer each bot message shows.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "teams_conversations",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.Text(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "teams_answer_messages",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_teams_answer_messages_created_at", "teams_answer_messages", ["created_at"]
    )


def downgrade() -> None:
    op.drop_table("teams_answer_messages")
    op.drop_table("teams_conversations")
