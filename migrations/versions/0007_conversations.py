"""Platform-neutral conversation records: `slack_requests` becomes `posted_answers` (keyed by
request id, with the conversation reference: platform, tenant, conversation, thread, message
ids, the asker's platform user id); `feedback` loses its Slack-shaped `thread` (the thread
is the answer's) and names the voter `voter_id`; the "person offered in this thread" claims
move from `slack_events` to `conversation_claims`. Existing rows are carried over both ways
(downgrading keeps only what Slack had: Slack answers, their votes and offer claims).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
OLD_OFFER = "offer:"  # slack_events key: offer:<channel>:<thread ts>
NEW_OFFER = "offer:slack:"  # conversation_claims key: offer:<platform>:<conversation>:<thread>


def upgrade() -> None:
    op.create_table(
        "posted_answers",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("conversation_id", sa.String(256), nullable=False),
        sa.Column("thread_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("answer_message_id", sa.String(128), nullable=True),
        sa.Column("asker_id", sa.String(128), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_posted_answers_thread",
        "posted_answers",
        ["platform", "conversation_id", "thread_id"],
    )
    op.execute(
        "INSERT INTO posted_answers (request_id, platform, tenant_id, conversation_id, "
        "thread_id, asker_id, question, created_at) "
        "SELECT request_id, 'slack', team_id, channel_id, thread_ts, user_id, question, "
        "created_at FROM slack_requests"
    )
    op.drop_index("ix_slack_requests_thread_ts", table_name="slack_requests")
    op.drop_table("slack_requests")

    op.drop_index("ix_feedback_thread", table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("thread")
        batch.alter_column("user", new_column_name="voter_id", existing_type=sa.String(320))

    op.create_table(
        "conversation_claims",
        sa.Column("claim_key", sa.String(400), primary_key=True),
        sa.Column("claimed_at", TZ, nullable=False),
    )
    op.execute(
        f"INSERT INTO conversation_claims (claim_key, claimed_at) "
        f"SELECT '{NEW_OFFER}' || substr(event_id, {len(OLD_OFFER) + 1}), received_at "
        f"FROM slack_events WHERE event_id LIKE '{OLD_OFFER}%'"
    )
    op.execute(f"DELETE FROM slack_events WHERE event_id LIKE '{OLD_OFFER}%'")


def downgrade() -> None:
    op.execute(
        f"INSERT INTO slack_events (event_id, received_at) "
        f"SELECT '{OLD_OFFER}' || substr(claim_key, {len(NEW_OFFER) + 1}), claimed_at "
        f"FROM conversation_claims WHERE claim_key LIKE '{NEW_OFFER}%'"
    )
    op.drop_table("conversation_claims")

    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("voter_id", new_column_name="user", existing_type=sa.String(320))
        batch.add_column(sa.Column("thread", sa.String(128), nullable=True))
    op.execute(
        "DELETE FROM feedback WHERE request_id NOT IN "
        "(SELECT request_id FROM posted_answers WHERE platform = 'slack')"
    )
    op.execute(
        "UPDATE feedback SET thread = (SELECT p.conversation_id || ':' || p.thread_id "
        "FROM posted_answers p WHERE p.request_id = feedback.request_id)"
    )
    op.create_index("ix_feedback_thread", "feedback", ["thread"])

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
    op.execute(
        "INSERT INTO slack_requests (request_id, team_id, channel_id, thread_ts, user_id, "
        "question, created_at) "
        "SELECT request_id, tenant_id, conversation_id, thread_id, asker_id, question, "
        "created_at FROM posted_answers WHERE platform = 'slack'"
    )
    op.drop_index("ix_posted_answers_thread", table_name="posted_answers")
    op.drop_table("posted_answers")
