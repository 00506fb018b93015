"""Read queries on the answer path, with as few thread hand-offs as the database allows.

aiosqlite runs every cursor call (open, execute, fetch, close, the pool's rollback) as its
own trip to the connection's thread: five trips per query, each a GIL hand-off that can
wait a whole switch interval while the event loop is busy. For SQLite files this runs the
whole query on a plain sqlite3 connection in one worker-thread trip instead. PostgreSQL
(asyncpg) needs no thread at all and keeps the async engine.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Executable, Row, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import SQLITE_POOL, is_sqlite_file, sqlite_pragmas


class RowReader:
    def __init__(self, engine: AsyncEngine) -> None:
        # Weak: the reader lives as long as its engine (see row_reader), not the reverse.
        self._engine = weakref.ref(engine)
        self._sync = _sync_sqlite(engine)

    async def all(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """Every row `statement` returns (a read: nothing is committed)."""
        if self._sync is None:
            engine = self._engine()
            if engine is None:
                raise RuntimeError("the database engine is gone")
            async with engine.connect() as conn:
                return (await conn.execute(statement, params)).all()
        return await asyncio.to_thread(self._all_sync, self._sync, statement, params)

    @property
    def sync_engine(self) -> Engine | None:
        """The plain sqlite3 engine (SQLite files only), also used for writes (writes.py)."""
        return self._sync

    def dispose(self) -> None:
        """Close the SQLite file connections (the engine's own pool is disposed with it)."""
        if self._sync is not None:
            self._sync.dispose()

    async def scalar(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        rows = await self.all(statement, params)
        return rows[0][0] if rows else None

    @staticmethod
    def _all_sync(
        engine: Engine, statement: Executable, params: Mapping[str, Any] | None
    ) -> Sequence[Row[Any]]:
        with engine.connect() as conn:
            return conn.execute(statement, params).all()


_READERS: weakref.WeakKeyDictionary[AsyncEngine, RowReader] = weakref.WeakKeyDictionary()


def row_reader(engine: AsyncEngine) -> RowReader:
    """The engine's reader, shared by every repository on it (one pool per database)."""
    reader = _READERS.get(engine)
    if reader is None:
        reader = _READERS[engine] = RowReader(engine)
    return reader


def close_reader(engine: AsyncEngine) -> None:
    """Close the engine's reader, if it has one (call before disposing the engine)."""
    reader = _READERS.pop(engine, None)
    if reader is not None:
        reader.dispose()


def _sync_sqlite(engine: AsyncEngine) -> Engine | None:
    if not is_sqlite_file(engine.url):
        return None  # not SQLite, or an in-memory database only the async engine can see
    sync = create_sync_engine(
        engine.url.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": 30, "check_same_thread": False},
        **SQLITE_POOL,
    )
    event.listen(sync, "connect", sqlite_pragmas)
    return sync
