"""Small write transactions on the answer path (an event's claim, its renewals and
completion, the posted answer's record, the conversation's memory) in one thread trip.

Through aiosqlite every step of a transaction (connection reset, cursor, execute, close,
commit) is its own trip to the connection's thread and back to the event loop: a wake-up
and a GIL hand-off each. For SQLite files the whole transaction runs here on a plain
sqlite3 connection in one trip to a thread of its own; SQLite has one writer at a time
anyway, so one thread for this process's writes also spares them waiting on each other's
locks. Each transaction commits before its result is returned (the same durability as
before). PostgreSQL (asyncpg) needs no thread and runs the same work through the async
engine's connection (``run_sync``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.reader import row_reader

T = TypeVar("T")


class Writes:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = weakref.ref(engine)  # lives as long as its engine (see writes_for)
        self._sync = row_reader(engine).sync_engine
        self._thread = (
            ThreadPoolExecutor(1, thread_name_prefix="answerdesk-sqlite-writes")
            if self._sync is not None
            else None
        )

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction, committed when it returns (rolled back when it
        raises, and the error raised here)."""
        if self._sync is None or self._thread is None:
            engine = self._engine()
            if engine is None:
                raise RuntimeError("the database engine is gone")
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        sync = self._sync

        def transaction() -> T:
            with sync.begin() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._thread, transaction)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)


_WRITES: weakref.WeakKeyDictionary[AsyncEngine, Writes] = weakref.WeakKeyDictionary()


def writes_for(engine: AsyncEngine) -> Writes:
    """The engine's writes, shared by every repository on it (one writer thread per
    database)."""
    writes = _WRITES.get(engine)
    if writes is None:
        writes = _WRITES[engine] = Writes(engine)
    return writes


def close_writes(engine: AsyncEngine) -> None:
    """Finish the engine's pending writes and stop its thread (before the reader closes)."""
    writes = _WRITES.pop(engine, None)
    if writes is not None:
        writes.close()
