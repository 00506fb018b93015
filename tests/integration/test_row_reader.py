"""The answer path's reads see exactly what the async engine wrote, on every database."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from sqlalchemy import select, text

from adapters.db.directory import SqlDirectory
from adapters.db.engine import create_engine, upgrade
from adapters.db.models import DirectoryUser
from adapters.db.reader import row_reader
from core.directory import DirectoryEntry


async def _check_reads_follow_writes(url: str, *, sync_path: bool) -> None:
    await upgrade(url)
    engine = create_engine(url)
    try:
        reader = row_reader(engine)
        assert row_reader(engine) is reader  # one pool per database
        assert (reader._sync is not None) == sync_path
        directory = SqlDirectory(engine)
        ann = DirectoryEntry(email="ann@example.com", name="Ann", groups=("hr",))
        await directory.import_entries([ann], replace=False)
        resolved = await directory.resolve_email("ANN@example.com")
        assert resolved.known and "group:hr" in resolved.principals
        # A write through the async engine is visible to the very next read.
        bo = DirectoryEntry(email="bo@example.com", name="Bo", groups=())
        await directory.import_entries([bo], replace=True)
        assert not (await directory.resolve_email("ann@example.com")).known
        rows = await reader.all(select(DirectoryUser.email, DirectoryUser.name))
        assert [tuple(r) for r in rows] == [("bo@example.com", "Bo")]
        assert await reader.scalar(text("SELECT count(*) FROM directory_users")) == 1
        assert await reader.scalar(select(DirectoryUser.name).where(text("1 = 0"))) is None
    finally:
        await engine.dispose()


async def test_sqlite_file_reads_in_one_worker_trip(tmp_path: Path) -> None:
    await _check_reads_follow_writes(
        f"sqlite+aiosqlite:///{tmp_path / 'answerdesk.db'}", sync_path=True
    )


async def test_in_memory_sqlite_keeps_the_async_engine() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert row_reader(engine)._sync is None
        assert await row_reader(engine).scalar(text("SELECT 41 + 1")) == 42
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_reads_on_the_async_engine(postgres_url: str) -> None:
    await _check_reads_follow_writes(postgres_url, sync_path=False)


async def test_a_reader_goes_with_its_engine(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'answerdesk.db'}")
    reader = weakref.ref(row_reader(engine))
    await engine.dispose()
    del engine
    gc.collect()
    assert reader() is None  # no database stays open behind a disposed service
