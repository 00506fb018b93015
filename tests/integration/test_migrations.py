"""Migrations up and down on SQLite and PostgreSQL."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect

from adapters.db.engine import create_engine, downgrade_sync, upgrade_sync

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
    "slack_requests",
    "feedback",
    "teams_claims",
    "teams_conversations",
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
