"""The pre-launch checklist in the database: its runs (the console shows the last one) and
what its ACL probe may leave behind when a run is killed: probe documents (ids under
PROBE_ROOT), cache rows of its probe release, and the probe group's ACL set."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import as_utc, sessionmaker
from adapters.db.models import AclSet, CacheEntry, Chunk, Document, Passage, PreflightRun

PROBE_ROOT = "__preflight__"  # probe document ids: __preflight__/<run>/<name>
PROBE_RELEASE = "preflight-"  # the probe's answers (and cache rows) carry preflight-<run>
PROBE_GROUP = "group:answerdesk-preflight-"  # the probe documents' only reader: …-<run>
STALE = timedelta(hours=1)  # a run "running" for longer was killed


class PreflightStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

    async def start(self, run: str, actor: str) -> None:
        async with self._sessions() as session, session.begin():
            session.add(
                PreflightRun(id=run, started_at=_now(), status="running", actor=actor, items=None)
            )

    async def finish(self, run: str, status: str, items: list[dict[str, Any]] | None) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(PreflightRun)
                .where(PreflightRun.id == run)
                .values(status=status, items=items, finished_at=_now())
            )

    async def probing(self, run: str) -> None:
        """This process probes for `run` (what tells a live run from a killed one)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(PreflightRun)
                .where(PreflightRun.id == run)
                .values(host=socket.gethostname(), pid=os.getpid())
            )

    async def running(self) -> set[str]:
        """Runs that may still be probing: not finished, and their process alive (on this
        host) or, elsewhere, started within the last hour."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(PreflightRun.id, PreflightRun.host, PreflightRun.pid).where(
                        PreflightRun.status == "running",
                        PreflightRun.started_at >= _now() - STALE,
                    )
                )
            ).all()
        here = socket.gethostname()
        return {run for run, host, pid in rows if host != here or pid is None or _alive(pid)}

    async def last(self) -> dict[str, Any] | None:
        """The last finished run."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(PreflightRun)
                .where(PreflightRun.finished_at.is_not(None))
                .order_by(PreflightRun.started_at.desc())
                .limit(1)
            )
        if row is None:
            return None
        return {
            "run": row.id,
            "started_at": as_utc(row.started_at).isoformat(timespec="seconds"),
            "finished_at": as_utc(row.finished_at).isoformat(timespec="seconds")
            if row.finished_at
            else None,
            "status": row.status,
            "actor": row.actor,
            "items": row.items or [],
        }


async def probe_documents(engine: AsyncEngine) -> list[str]:
    async with sessionmaker(engine)() as session:
        rows = await session.scalars(
            select(Document.id).where(Document.id.startswith(f"{PROBE_ROOT}/"))
        )
        return list(rows)


async def probe_leftovers(engine: AsyncEngine) -> dict[str, int]:
    """What probes left in the database (all runs): documents, cache rows, ACL sets."""
    async with sessionmaker(engine)() as session:
        documents = len(
            list(
                await session.scalars(
                    select(Document.id).where(Document.id.startswith(f"{PROBE_ROOT}/"))
                )
            )
        )
        cache = len(
            list(
                await session.scalars(
                    select(CacheEntry.id).where(CacheEntry.release.startswith(PROBE_RELEASE))
                )
            )
        )
        acl_sets = len(await _probe_acl_sets(session))
    return {"documents": documents, "cache_entries": cache, "acl_sets": acl_sets}


async def drop_probe_rows(engine: AsyncEngine, drop: Callable[[str], bool]) -> dict[str, int]:
    """Cache rows and ACL sets of the probe runs `drop` names (documents go through the
    catalog, which also drops their passages)."""
    async with sessionmaker(engine)() as session, session.begin():
        ids = [
            entry_id
            for entry_id, release in (
                await session.execute(
                    select(CacheEntry.id, CacheEntry.release).where(
                        CacheEntry.release.startswith(PROBE_RELEASE)
                    )
                )
            ).all()
            if drop(release.removeprefix(PROBE_RELEASE))
        ]
        if ids:
            await session.execute(delete(CacheEntry).where(CacheEntry.id.in_(ids)))
        unused = []
        for key, principals in await _probe_acl_sets(session):
            runs = {p.removeprefix(PROBE_GROUP) for p in principals if p.startswith(PROBE_GROUP)}
            if not all(drop(run) for run in runs):
                continue
            used = (
                await session.scalar(select(Chunk.id).where(Chunk.acl_key == key).limit(1))
                or await session.scalar(select(Passage.id).where(Passage.acl_key == key).limit(1))
                or await session.scalar(select(Document.id).where(Document.acl_key == key).limit(1))
            )
            if not used:
                unused.append(key)
        if unused:
            await session.execute(delete(AclSet).where(AclSet.key.in_(unused)))
    return {"cache_entries": len(ids), "acl_sets": len(unused)}


async def _probe_acl_sets(session: Any) -> list[tuple[str, list[str]]]:
    rows = (await session.execute(select(AclSet.key, AclSet.principals))).all()
    return [
        (key, principals)
        for key, principals in rows
        if any(str(p).startswith(PROBE_GROUP) for p in principals)
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _now() -> datetime:
    return datetime.now(UTC)
