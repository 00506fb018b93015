"""The semantic cache's data-boundary check (core/cache.py, condition 6): an answer a tier
wrote is served only when that tier may receive every classification of the entry's context
and of the context a fresh answer for this requester would use."""

from __future__ import annotations

from collections.abc import Sequence

from core.cache import CacheConfig, CachedAnswer, ContextChunk, SemanticCache
from core.classification import ALL_LEVELS

VECTOR = [1.0, 0.0]
EXTERNAL = frozenset({"public", "internal"})


class MemoryStore:
    """The CacheStore port in memory: every entry is the nearest, at similarity 1."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedAnswer] = {}

    async def nearest(self, vector: Sequence[float], n: int) -> list[tuple[str, float]]:
        return [(i, 1.0) for i in list(self.entries)[:n]]

    async def load(self, ids: Sequence[str]) -> dict[str, CachedAnswer]:
        return {i: self.entries[i] for i in ids if i in self.entries}

    async def save(self, entry: CachedAnswer, vector: Sequence[float]) -> None:
        self.entries[entry.id] = entry

    async def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.entries.pop(i, None)

    async def record_hit(self, entry_id: str) -> None:
        self.entries[entry_id].hits += 1

    async def same_question(self, question: str, n: int) -> list[str]:
        return [i for i, e in self.entries.items() if e.question == question][:n]


async def allows(acl: str) -> bool:
    return True


async def versions(documents: Sequence[str]) -> dict[str, str]:
    return {d: "v1" for d in documents}


async def cache_with(tier: str, entry_levels: list[str]) -> SemanticCache:
    cache = SemanticCache(
        MemoryStore(), CacheConfig(), "r1", {"external": EXTERNAL, "selfhosted": ALL_LEVELS}
    )
    context = [
        ContextChunk(f"c{n}", f"doc{n}", "k", "v1", level) for n, level in enumerate(entry_levels)
    ]
    answer = {"text": "x [1]", "citations": [{"document_id": "doc0"}], "tier": tier}
    await cache.store(VECTOR, "how long is a guest pass", answer, context, "req-1")
    return cache


async def lookup(cache: SemanticCache, requester_levels: list[str]) -> tuple[str, str]:
    """The requester's retrieval: the entry's three documents on top (as the cache's other
    checks require), then one more document per further level, ranked below them."""

    async def retrieved() -> list[tuple[str, str]]:
        top = [(f"doc{n}", level) for n, level in enumerate(requester_levels[:3])]
        return top + [(f"other{n}", level) for n, level in enumerate(requester_levels[3:])]

    decision = await cache.lookup(VECTOR, "how long is a guest pass", allows, versions, retrieved)
    return decision.status, decision.reason


async def test_served_when_the_tier_may_receive_both_contexts() -> None:
    cache = await cache_with("external", ["internal", "public", "public"])
    assert (await lookup(cache, ["internal", "public", "public"]))[0] == "hit"


async def test_not_served_to_a_requester_whose_context_the_tier_could_not_receive() -> None:
    cache = await cache_with("external", ["internal", "public", "public"])
    status, reason = await lookup(cache, ["internal", "public", "public", "confidential"])
    assert status == "miss"
    assert "tier 'external' could not receive this requester's confidential sources" in reason


async def test_a_tier_allowed_everything_is_served_to_anyone() -> None:
    cache = await cache_with("selfhosted", ["restricted", "public", "public"])
    assert (await lookup(cache, ["restricted", "public", "public", "confidential"]))[0] == "hit"


async def test_quoted_answers_went_to_no_model() -> None:
    cache = await cache_with("extractive", ["restricted"])
    assert (await lookup(cache, ["restricted"]))[0] == "hit"


async def test_entries_beyond_the_boundary_or_unrecorded_are_not_served() -> None:
    # A tier narrowed since, or a tier no longer configured: the entry is not served.
    cache = await cache_with("external", ["confidential"])
    status, reason = await lookup(cache, ["confidential"])
    assert status == "miss" and "may not receive the entry's confidential sources" in reason
    cache = await cache_with("retired", ["public"])
    assert (await lookup(cache, ["public"]))[0] == "miss"
    # Entries stored before classifications were recorded count as restricted.
    assert ContextChunk("c", "d", "k", "v").classification == "restricted"
