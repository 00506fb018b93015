"""The release store on SQLite and PostgreSQL: rollbacks walk back through the activations
one step at a time, a canary runs next to the active release until promoted or rolled back,
and every change is recorded with who made it and why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.db.engine import create_engine, upgrade
from adapters.db.releases import ReleaseError, SqlReleaseStore


async def _store(url: str) -> tuple[SqlReleaseStore, object]:
    await upgrade(url)
    engine = create_engine(url)
    store = SqlReleaseStore(engine)
    for name in ("config", "a", "b", "c"):
        release = f"{name:0<12}"
        await store.create(release, name * 8, {"name": name}, actor="ops", note=name, origin="file")
    return store, engine


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlReleaseStore]:
    store, engine = await _store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    yield store
    await engine.dispose()  # type: ignore[attr-defined]


CONFIG, A, B, C = (f"{n:0<12}" for n in ("config", "a", "b", "c"))


async def walk(store: SqlReleaseStore) -> None:
    assert (await store.state()).active is None
    await store.activate(A, actor="dana", configured=CONFIG)
    assert await store.previous() == CONFIG  # the configuration file's release, stored
    await store.activate(B, actor="dana", configured=CONFIG, reason="hotfix", forced=True)
    await store.activate(A, actor="lee", configured=CONFIG)
    # Rollbacks undo one activation each: A ← B ← A ← CONFIG.
    assert (await store.rollback(actor="lee"))[1].active == B
    assert await store.previous() == A
    assert (await store.rollback(actor="lee"))[1].active == A
    assert (await store.rollback(actor="lee"))[1].active == CONFIG
    with pytest.raises(ReleaseError, match="no previous release"):
        await store.rollback(actor="lee")
    # A canary next to the active one; the rollback ends it, the promotion keeps it.
    await store.activate(C, actor="dana", share=10, configured=CONFIG)
    state = await store.state()
    assert (state.active, state.canary, state.share) == (CONFIG, C, 10)
    with pytest.raises(ReleaseError, match="on canary"):
        await store.activate(B, actor="dana", configured=CONFIG)
    ended, state = await store.rollback(actor="dana")
    assert ended == C and (state.active, state.canary) == (CONFIG, None)
    await store.activate(C, actor="dana", share=25, configured=CONFIG)
    state = await store.promote(actor="dana")
    assert (state.active, state.canary, state.share) == (C, None, 0)
    assert await store.previous() == CONFIG
    with pytest.raises(ReleaseError, match="nothing to promote"):
        await store.promote(actor="dana")
    with pytest.raises(ReleaseError, match="already active"):
        await store.activate(C, actor="dana", configured=CONFIG)
    events = await store.events(B)
    forced = next(e for e in events if e["action"] == "activate")
    assert forced["forced"] and forced["reason"] == "hotfix" and forced["actor"] == "dana"


async def test_rollbacks_canaries_and_history_on_sqlite(sqlite_store: SqlReleaseStore) -> None:
    await walk(sqlite_store)


@pytest.mark.postgres
async def test_rollbacks_canaries_and_history_on_postgres(postgres_url: str) -> None:
    store, engine = await _store(postgres_url)
    try:
        await walk(store)
        # Two activations at once: the state row serialises them; the second sees the
        # first's result and is refused rather than both "winning".
        before = await store.state()
        outcomes = await asyncio.gather(
            store.activate(A, actor="x", configured=CONFIG, expected=before),
            store.activate(B, actor="y", configured=CONFIG, expected=before),
            return_exceptions=True,
        )
        assert sum(isinstance(o, ReleaseError) for o in outcomes) == 1
        assert (await store.state()).active in (A, B)
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_prefixes_resolve_when_unique(sqlite_store: SqlReleaseStore) -> None:
    assert (await sqlite_store.get("conf")).id == CONFIG
    with pytest.raises(ReleaseError, match="at least 4"):
        await sqlite_store.get("co")
    with pytest.raises(ReleaseError, match="no release"):
        await sqlite_store.get("ffff")
    await sqlite_store.create("0000aaaa0000", "h1", {}, actor="o", note="", origin="file")
    await sqlite_store.create("0000aaab0000", "h2", {}, actor="o", note="", origin="file")
    with pytest.raises(ReleaseError, match="ambiguous"):
        await sqlite_store.get("0000aaa")
    again, created = await sqlite_store.create(
        "ffffffffffff", "h1", {}, actor="o", note="", origin="file"
    )
    assert (again.id, created) == ("0000aaaa0000", False)  # same content: the stored one
