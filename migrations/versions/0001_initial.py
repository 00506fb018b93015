"""Documents, passages, chunks, ACL sets, ingestion runs, directory.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "index_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "acl_sets",
        sa.Column("key", sa.String(16), primary_key=True),
        sa.Column("principals", sa.JSON(), nullable=False),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("root", sa.String(1024), nullable=False, index=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("acl_key", sa.String(16), sa.ForeignKey("acl_sets.key"), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("ingested_at", TZ, nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "passages",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("acl_key", sa.String(16), sa.ForeignKey("acl_sets.key"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
    )
    op.create_index("ix_passages_acl_key", "passages", ["acl_key"])
    op.create_table(
        "chunks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "document_id",
            sa.String(512),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("passage_id", sa.String(64), sa.ForeignKey("passages.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("heading_path", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("acl_key", sa.String(16), sa.ForeignKey("acl_sets.key"), nullable=False),
    )
    op.create_index("ix_chunks_document_id", "chunks", ["document_id"])
    op.create_index("ix_chunks_passage_id", "chunks", ["passage_id"])
    op.create_index("ix_chunks_acl_key", "chunks", ["acl_key"])
    op.create_index("ix_chunks_document_position", "chunks", ["document_id", "position"])
    op.create_table(
        "ingestion_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("roots", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )
    op.create_table(
        "directory_users",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "directory_memberships",
        sa.Column(
            "email",
            sa.String(320),
            sa.ForeignKey("directory_users.email", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("group_name", sa.String(256), primary_key=True),
    )
    op.create_table(
        "platform_identities",
        sa.Column("platform", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("external_id", sa.String(128), primary_key=True),
        sa.Column(
            "email",
            sa.String(320),
            sa.ForeignKey("directory_users.email", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_platform_identities_email", "platform_identities", ["email"])
    # Lexical search over passage text, native to each database.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE passages_fts USING fts5("
            "passage_id UNINDEXED, text, tokenize = 'porter unicode61')"
        )
    else:
        op.execute(
            "ALTER TABLE passages ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', search_text)) STORED"
        )
        op.execute("CREATE INDEX ix_passages_tsv ON passages USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE passages_fts")
    op.drop_table("platform_identities")
    op.drop_table("directory_memberships")
    op.drop_table("directory_users")
    op.drop_table("ingestion_runs")
    op.drop_table("chunks")
    op.drop_table("passages")
    op.drop_table("documents")
    op.drop_table("acl_sets")
    op.drop_table("index_state")
