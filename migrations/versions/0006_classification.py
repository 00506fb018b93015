"""Document classifications (data boundaries per model tier): documents.classification.

Documents indexed before this revision become `internal` (the shipped default); re-ingesting
them with an ACL file or front matter that classifies them updates the column.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "documents",
        sa.Column("classification", sa.String(16), nullable=False, server_default="internal"),
    )


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch copy of `documents` would
    # drop the old table and cascade-delete every chunk under PRAGMA foreign_keys.
    op.drop_column("documents", "classification")
