"""Teams: claimed activity ids, stored conversation references.

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
        "teams_claims",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_index("ix_teams_claims_received_at", "teams_claims", ["received_at"])
    op.create_table(
        "teams_conversations",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.Text(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("teams_conversations")
    op.drop_table("teams_claims")
