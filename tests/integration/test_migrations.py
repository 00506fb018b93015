"""Migrations up and down on SQLite and PostgreSQL."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from adapters.db.conversations import SqlConversationStore
from adapters.db.engine import alembic_config, create_engine, downgrade_sync, upgrade_sync
from core.conversation.types import ConversationRef, PostedAnswer, Vote

TABLES = {
    "documents",
    "chunks",
    "passages",
    "acl_sets",
    "ingestion_runs",
    "directory_users",
    "directory_memberships",
    "platform_identities",
    "index_state",
    "traces",
    "cache_entries",
    "tickets",
    "conversation_turns",
    "slack_events",
    "slack_users",
    "posted_answers",
    "conversation_claims",
    "feedback",
    "admin_users",
    "admin_sessions",
    "admin_login_failures",
    "admin_audit",
    "admin_keys",
    "ticket_messages",
    "teams_answer_messages",
    "teams_conversations",
    "releases",
    "release_state",
    "release_events",
    "preflight_runs",
}


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _round_trip(url: str) -> None:
    upgrade_sync(url)
    assert _tables(url) >= TABLES
    downgrade_sync(url, "base")
    assert _tables(url) & TABLES == set()
    upgrade_sync(url)
    assert _tables(url) >= TABLES


def test_sqlite_up_down_up(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")


@pytest.mark.postgres
def test_postgres_up_down_up(postgres_url: str) -> None:
    _round_trip(postgres_url)


# -- 0007: slack_requests/feedback become platform-neutral, rows carried over both ways ------


def _sql(url: str, *statements: tuple[str, dict] | str) -> list[list[tuple]]:
    """Run statements in one transaction; the rows of each SELECT."""

    async def run() -> list[list[tuple]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                out = []
                for statement in statements:
                    sql, params = statement if isinstance(statement, tuple) else (statement, {})
                    result = await conn.execute(text(sql), params)
                    out.append([tuple(r) for r in result] if result.returns_rows else [])
                return out
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _with_store(url: str, work: Callable[[SqlConversationStore], Awaitable[None]]) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            await work(SqlConversationStore(engine))
        finally:
            await engine.dispose()

    asyncio.run(run())


def _conversation_round_trip(url: str) -> None:
    before = ScriptDirectory.from_config(alembic_config(url)).get_revision("0007").down_revision
    assert isinstance(before, str)
    upgrade_sync(url, before)
    now = {"now": datetime(2026, 12, 1, tzinfo=UTC)}
    _sql(
        url,
        *(
            (
                "INSERT INTO slack_requests VALUES (:r, 'T1', 'C1', :t, :u, :q, :now)",
                {"r": r, "t": t, "u": u, "q": f"question {r}", **now},
            )
            for r, t, u in (("r1", "100.1", "U1"), ("r2", "100.1", "U2"), ("r3", "200.2", "U1"))
        ),
        *(
            (
                'INSERT INTO feedback (request_id, "user", value, thread, created_at) '
                "VALUES (:r, :u, :v, :thread, :now)",
                {"r": r, "u": u, "v": v, "thread": thread, **now},
            )
            for r, u, v, thread in (
                ("r1", "U2", -1, "C1:100.1"),
                ("r2", "U3", 1, "C1:100.1"),
                ("r3", "U2", -1, "C1:200.2"),
            )
        ),
        ("INSERT INTO slack_events VALUES ('Ev1', :now), ('offer:C1:100.1', :now)", now),
    )

    upgrade_sync(url)
    [answers, votes, claims, events] = _sql(
        url,
        "SELECT request_id, platform, tenant_id, conversation_id, thread_id, message_id, "
        "answer_message_id, asker_id, question FROM posted_answers ORDER BY request_id",
        "SELECT request_id, voter_id, value FROM feedback ORDER BY request_id",
        "SELECT claim_key FROM conversation_claims",
        "SELECT event_id FROM slack_events",
    )
    assert answers == [
        ("r1", "slack", "T1", "C1", "100.1", None, None, "U1", "question r1"),
        ("r2", "slack", "T1", "C1", "100.1", None, None, "U2", "question r2"),
        ("r3", "slack", "T1", "C1", "200.2", None, None, "U1", "question r3"),
    ]
    assert votes == [("r1", "U2", -1), ("r2", "U3", 1), ("r3", "U2", -1)]
    assert claims == [("offer:slack:C1:100.1",)]
    assert events == [("Ev1",)]

    async def carried_over(store: SqlConversationStore) -> None:
        # The code reads the carried-over rows as it reads its own: the thread's earlier
        # 👎 counts, and the offer already made there is not made again.
        posted = await store.get("r1")
        assert posted == PostedAnswer(
            "r1", ConversationRef("slack", "T1", "C1", "100.1"), "U1", "question r1"
        )
        assert await store.answered_in(posted.where)
        assert await store.vote("r2", "U4", -1) == 2
        assert not await store.claim(f"offer:{posted.where.thread_key}")
        assert await store.votes("r1") == [Vote("U2", -1)]

    _with_store(url, carried_over)

    downgrade_sync(url, before)
    [requests, old_votes, old_events] = _sql(
        url,
        "SELECT request_id, team_id, channel_id, thread_ts, user_id, question "
        "FROM slack_requests ORDER BY request_id",
        'SELECT request_id, "user", value, thread FROM feedback ORDER BY request_id, "user"',
        "SELECT event_id FROM slack_events ORDER BY event_id",
    )
    assert requests == [
        ("r1", "T1", "C1", "100.1", "U1", "question r1"),
        ("r2", "T1", "C1", "100.1", "U2", "question r2"),
        ("r3", "T1", "C1", "200.2", "U1", "question r3"),
    ]
    assert old_votes == [
        ("r1", "U2", -1, "C1:100.1"),
        ("r2", "U3", 1, "C1:100.1"),
        ("r2", "U4", -1, "C1:100.1"),
        ("r3", "U2", -1, "C1:200.2"),
    ]
    assert old_events == [("Ev1",), ("offer:C1:100.1",)]
    assert not {"posted_answers", "conversation_claims"} & _tables(url)

    upgrade_sync(url)
    [count, claims] = _sql(
        url, "SELECT count(*) FROM feedback", "SELECT claim_key FROM conversation_claims"
    )
    assert count == [(4,)] and claims == [("offer:slack:C1:100.1",)]


def test_conversation_tables_carry_rows_over_on_sqlite(tmp_path: Path) -> None:
    _conversation_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")


@pytest.mark.postgres
def test_conversation_tables_carry_rows_over_on_postgres(postgres_url: str) -> None:
    _conversation_round_trip(postgres_url)


# -- 0009: tickets become the handoff outbox, existing tickets carried over ------------------


def _tickets_round_trip(url: str) -> None:
    before = ScriptDirectory.from_config(alembic_config(url)).get_revision("0009").down_revision
    assert isinstance(before, str)
    upgrade_sync(url, before)
    now = {"now": datetime(2026, 12, 1, tzinfo=UTC)}
    rows = (  # two open tickets in one conversation (the old schema allowed it), one closed
        (1, "open", "r1", "slack:T1:C1:1.1"),
        (2, "open", "r2", "slack:T1:C1:1.1"),
        (3, "closed", "r3", "slack:T1:C1:2.2"),
        (4, "open", "r4", None),
    )
    _sql(
        url,
        *(
            (
                "INSERT INTO tickets (id, created_at, status, request_id, conversation_id, "
                "asker, question, reason) VALUES (:id, :now, :status, :r, :c, 'a@x.io', 'q', "
                "'asked for a human')",
                {"id": i, "status": status, "r": r, "c": c, **now},
            )
            for i, status, r, c in rows
        ),
    )
    upgrade_sync(url)
    [carried] = _sql(
        url,
        "SELECT id, provider, key, delivery, open_key FROM tickets ORDER BY id",
    )
    assert carried == [
        (1, "builtin", "AD-1", "delivered", None),
        (2, "builtin", "AD-2", "delivered", "slack:T1:C1:1.1"),
        (3, "builtin", "AD-3", "delivered", None),
        (4, "builtin", "AD-4", "delivered", "request:r4"),
    ]
    # One ticket per request is gone, one open ticket per conversation holds.
    _sql(
        url,
        (
            "INSERT INTO tickets (id, created_at, status, request_id, question, reason, "
            "provider, delivery, attempts) VALUES (5, :now, 'closed', 'r1', 'q', 'x', 'jira', "
            "'queued', 0)",
            now,
        ),
    )
    with pytest.raises(Exception, match=r"(?i)unique"):
        _sql(
            url,
            (
                "INSERT INTO tickets (id, created_at, status, request_id, question, reason, "
                "provider, delivery, attempts, open_key) VALUES (6, :now, 'open', 'r6', 'q', "
                "'x', 'jira', 'queued', 0, 'slack:T1:C1:1.1')",
                now,
            ),
        )

    downgrade_sync(url, before)
    [old] = _sql(url, "SELECT id, request_id, status FROM tickets ORDER BY id")
    assert old == [(1, "r1", "open"), (2, "r2", "open"), (3, "r3", "closed"), (4, "r4", "open")]
    assert "ticket_messages" not in _tables(url)
    with pytest.raises(Exception, match=r"(?i)unique"):  # one ticket per request again
        _sql(
            url,
            (
                "INSERT INTO tickets (created_at, status, request_id, question, reason) "
                "VALUES (:now, 'open', 'r1', 'q', 'x')",
                now,
            ),
        )
    upgrade_sync(url)
    [again] = _sql(url, "SELECT count(*) FROM tickets WHERE open_key IS NOT NULL")
    assert again == [(2,)]


def test_tickets_carry_over_on_sqlite(tmp_path: Path) -> None:
    _tickets_round_trip(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")


@pytest.mark.postgres
def test_tickets_carry_over_on_postgres(postgres_url: str) -> None:
    _tickets_round_trip(postgres_url)
