"""Releases in the database: their content, which one is active (and which is on canary),
and the history of every change with its actor, reason and gate result.

Every change runs in one transaction that first bumps `release_state.version` (row 1):
that row lock (PostgreSQL) or write lock (SQLite) makes concurrent changes from several
processes happen one after the other, each seeing the state the previous one left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from adapters.db.engine import as_utc, sessionmaker
from adapters.db.models import Release, ReleaseEvent, ReleaseStateRow
from core.releases import ReleaseState

_STATE = 1
MIN_PREFIX = 4


class ReleaseError(ValueError):
    """A change that cannot be made as asked: the message is for the operator."""


@dataclass(frozen=True, slots=True)
class StoredRelease:
    id: str
    content_hash: str
    content: dict[str, Any]
    created_by: str
    created_at: datetime
    note: str
    origin: str

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "content_hash": self.content_hash,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "note": self.note,
            "origin": self.origin,
        }


class SqlReleaseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

    # --- reading -------------------------------------------------------------------------

    async def state(self) -> ReleaseState:
        async with self._sessions() as session:
            row = await session.get(ReleaseStateRow, _STATE)
        if row is None:
            return ReleaseState()
        return ReleaseState(row.active_id, row.canary_id, row.canary_share, row.version)

    async def get(self, reference: str) -> StoredRelease:
        """A release by id or by a unique prefix of at least four characters."""
        reference = reference.strip().lower()
        if len(reference) < MIN_PREFIX:
            raise ReleaseError(f"release id {reference!r}: give at least {MIN_PREFIX} characters")
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(Release).where(Release.id.startswith(reference, autoescape=True))
                )
            )
        exact = [r for r in rows if r.id == reference]
        if exact:
            return _stored(exact[0])
        if not rows:
            raise ReleaseError(f"no release {reference!r} (see: answerdesk release list)")
        if len(rows) > 1:
            raise ReleaseError(f"release id {reference!r} is ambiguous: give more characters")
        return _stored(rows[0])

    async def find(self, release_id: str) -> StoredRelease | None:
        async with self._sessions() as session:
            row = await session.get(Release, release_id)
        return _stored(row) if row else None

    async def releases(self) -> list[StoredRelease]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Release).order_by(Release.created_at.desc()))
            return [_stored(r) for r in rows]

    async def events(self, release_id: str | None = None, limit: int = 200) -> list[dict]:
        stmt = select(ReleaseEvent).order_by(ReleaseEvent.id.desc()).limit(limit)
        if release_id is not None:
            stmt = stmt.where(ReleaseEvent.release_id == release_id)
        async with self._sessions() as session:
            return [_event(e) for e in await session.scalars(stmt)]

    async def previous(self) -> str | None:
        """What `rollback` would return to: the release the active one replaced."""
        async with self._sessions() as session:
            row = await session.get(ReleaseStateRow, _STATE)
            if row is None or row.active_event is None:
                return None
            current = await session.get(ReleaseEvent, row.active_event)
            return current.previous_id if current else None

    # --- changing ------------------------------------------------------------------------

    async def create(
        self,
        release_id: str,
        content_hash: str,
        content: dict,
        *,
        actor: str,
        note: str,
        origin: str,
    ) -> tuple[StoredRelease, bool]:
        """Store a release; the same content again returns the one stored (False)."""
        async with self._sessions() as session, session.begin():
            await _lock(session)
            existing = await session.scalar(
                select(Release).where(Release.content_hash == content_hash)
            )
            if existing is not None:
                return _stored(existing), False
            row = Release(
                id=release_id,
                content_hash=content_hash,
                content=content,
                created_by=actor,
                created_at=_now(),
                note=note,
                origin=origin,
            )
            session.add(row)
            session.add(_new_event("create", release_id, actor, reason=note or None))
            return _stored(row), True

    async def activate(
        self,
        release_id: str,
        *,
        actor: str,
        share: int | None = None,
        reason: str | None = None,
        forced: bool = False,
        gate: dict | None = None,
        configured: str | None = None,
        expected: ReleaseState | None = None,
    ) -> ReleaseState:
        """Make `release_id` the active release, or with `share` the canary. `configured`
        is the configuration file's release (stored already): what the first activation
        replaces. `expected` is the state the gate judged against: a change made meanwhile
        refuses this one."""
        async with self._sessions() as session, session.begin():
            state = await _lock(session)
            if expected is not None and (state.active_id, state.canary_id) != (
                expected.active,
                expected.canary,
            ):
                raise ReleaseError(
                    "the active release changed while the gate ran; run the activation again"
                )
            if await session.get(Release, release_id) is None:
                raise ReleaseError(f"no release {release_id!r}")
            if state.canary_id is not None:
                raise ReleaseError(
                    f"release {state.canary_id} is on canary ({state.canary_share}%): "
                    "promote it or roll it back first"
                )
            if release_id == (state.active_id or configured):
                raise ReleaseError(f"release {release_id} is already active")
            if state.active_id is None and configured is not None:
                # The configuration file's release becomes a release like the others: the
                # one the first activation replaces, and what a canary runs next to.
                await _make_active(session, state, configured, actor, reason="in effect before")
            details = {"reason": reason, "forced": forced, "gate": gate}
            if share:
                session.add(
                    _new_event(
                        "canary",
                        release_id,
                        actor,
                        previous=state.active_id,
                        share=share,
                        **details,
                    )
                )
                state.canary_id, state.canary_share = release_id, share
            else:
                await _make_active(session, state, release_id, actor, **details)
            return _state(state)

    async def promote(self, *, actor: str) -> ReleaseState:
        async with self._sessions() as session, session.begin():
            state = await _lock(session)
            if state.canary_id is None:
                raise ReleaseError("no release is on canary: nothing to promote")
            await _make_active(session, state, state.canary_id, actor, action="promote")
            state.canary_id, state.canary_share = None, 0
            return _state(state)

    async def rollback(self, *, actor: str, reason: str | None = None) -> tuple[str, ReleaseState]:
        """End a canary (the active release answers everything again), else go back to the
        release the active one replaced. Returns (what was rolled back, the new state)."""
        async with self._sessions() as session, session.begin():
            state = await _lock(session)
            if state.canary_id is not None:
                ended = state.canary_id
                session.add(
                    _new_event("end_canary", ended, actor, previous=state.active_id, reason=reason)
                )
                state.canary_id, state.canary_share = None, 0
                return ended, _state(state)
            current = (
                await session.get(ReleaseEvent, state.active_event) if state.active_event else None
            )
            if current is None or current.previous_id is None:
                raise ReleaseError("no previous release to roll back to")
            ended = current.release_id
            # Back to the step before: the target carries what it had replaced then, so
            # the next rollback goes one further step back.
            before = (
                await session.get(ReleaseEvent, current.previous_event)
                if current.previous_event
                else None
            )
            event = _new_event(
                "rollback",
                current.previous_id,
                actor,
                previous=before.previous_id if before else None,
                reason=reason or f"rolled back from {ended}",
            )
            event.previous_event = before.previous_event if before else None
            session.add(event)
            await session.flush()
            state.active_id, state.active_event = event.release_id, event.id
            return ended, _state(state)

    async def refused(self, release_id: str, *, actor: str, gate: dict) -> None:
        async with self._sessions() as session, session.begin():
            session.add(_new_event("refused", release_id, actor, gate=gate))


async def _lock(session: AsyncSession) -> ReleaseStateRow:
    await session.execute(
        update(ReleaseStateRow)
        .where(ReleaseStateRow.id == _STATE)
        .values(version=ReleaseStateRow.version + 1, updated_at=_now())
    )
    row = await session.get(ReleaseStateRow, _STATE, populate_existing=True)
    if row is None:  # the migration inserts it; a database emptied by hand gets it back
        row = ReleaseStateRow(id=_STATE, canary_share=0, version=1, updated_at=_now())
        session.add(row)
    return row


async def _make_active(
    session: AsyncSession,
    state: ReleaseStateRow,
    release_id: str,
    actor: str,
    *,
    action: str = "activate",
    **details: Any,
) -> None:
    """Record the activation on top of the one in effect (the rollback stack)."""
    event = _new_event(action, release_id, actor, previous=state.active_id, **details)
    event.previous_event = state.active_event
    session.add(event)
    await session.flush()
    state.active_id, state.active_event = release_id, event.id


def _new_event(
    action: str,
    release_id: str,
    actor: str,
    *,
    previous: str | None = None,
    share: int | None = None,
    reason: str | None = None,
    forced: bool = False,
    gate: dict | None = None,
) -> ReleaseEvent:
    return ReleaseEvent(
        at=_now(),
        action=action,
        release_id=release_id,
        previous_id=previous,
        share=share,
        actor=actor,
        reason=reason,
        forced=forced,
        gate=gate,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _state(row: ReleaseStateRow) -> ReleaseState:
    return ReleaseState(row.active_id, row.canary_id, row.canary_share, row.version)


def _stored(row: Release) -> StoredRelease:
    return StoredRelease(
        row.id,
        row.content_hash,
        row.content,
        row.created_by,
        as_utc(row.created_at),
        row.note,
        row.origin,
    )


def _event(row: ReleaseEvent) -> dict[str, Any]:
    return {
        "at": as_utc(row.at).isoformat(timespec="seconds"),
        "action": row.action,
        "release": row.release_id,
        "previous": row.previous_id,
        "share": row.share,
        "actor": row.actor,
        "reason": row.reason,
        "forced": row.forced,
        "gate": row.gate,
    }
