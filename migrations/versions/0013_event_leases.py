"""Event claims with leases: the replica answering an event (Slack event, Teams activity)
holds it for a renewed lease; a claim whose lease ran out before its answer was done is
taken over by another replica (the payload lets it answer again).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("conversation_claims") as batch:
        batch.add_column(sa.Column("owner", sa.String(96), nullable=True))
        batch.add_column(sa.Column("lease_until", TZ, nullable=True))
        batch.add_column(sa.Column("completed_at", TZ, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("note", sa.String(200), nullable=True))
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    op.create_index(
        "ix_conversation_claims_open", "conversation_claims", ["completed_at", "lease_until"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_claims_open", table_name="conversation_claims")
    with op.batch_alter_table("conversation_claims") as batch:
        for column in ("payload", "note", "attempts", "completed_at", "lease_until", "owner"):
            batch.drop_column(column)
