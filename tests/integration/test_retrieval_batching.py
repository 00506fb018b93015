"""Concurrent searches share index queries without changing anyone's results.

Real model, Chroma and SQLite on the demo corpus: the dense queries of concurrent searches go
to the index as one batched query, and every requester still gets exactly the hits a search
on its own gives them, over-fetched or filtered alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from bot.settings import Settings
from bot.wiring import Services, build_services
from core.ports import VectorMatch
from core.principals import PUBLIC
from core.retrieval import RetrievalConfig, Retriever, SearchResult

QUESTIONS = [
    "How many PTO days do I get after 3 years?",
    "What is the hotel limit for a trip to Seattle?",
    "What portal address do I enter in GlobalProtect?",
    "What is the salary range for a level 3 engineer?",
    "Who approves an expense report of $12,000?",
    "When do I get a new laptop?",
]
READERS = [
    frozenset({PUBLIC}),
    frozenset({PUBLIC, "group:hr"}),
    frozenset({"group:hr"}),  # a small share of the index: the filtered query
    frozenset({PUBLIC, "group:finance", "group:executives"}),
]


@pytest.fixture
async def demo(demo_settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(demo_settings)
    yield services
    await services.close()


def _summary(result: SearchResult) -> list[tuple[str, float, int | None, int | None]]:
    return [(h.chunk.chunk_id, h.score, h.dense_rank, h.lexical_rank) for h in result.hits]


async def test_query_many_is_query_for_each_vector(demo: Services) -> None:
    vectors = demo.embedder.embed(QUESTIONS)
    batched = demo.index.query_many(vectors, 20)
    assert batched == [demo.index.query(v, 20) for v in vectors]
    assert demo.index.query_many([], 20) == []


@pytest.mark.parametrize("hybrid", [True, False])
async def test_concurrent_searches_get_the_results_of_searching_alone(
    demo: Services, hybrid: bool
) -> None:
    calls: list[int] = []
    index = demo.index
    query_many = index.query_many

    def counted(vectors: Sequence[Sequence[float]], n: int) -> list[list[VectorMatch]]:
        calls.append(len(vectors))
        return query_many(vectors, n)

    index.query_many = counted  # type: ignore[method-assign]
    # A long view refresh keeps the permission view cached, so the searches below reach the
    # index in the same loop iteration (no database read in between).
    # The over-fetch limit sends the HR-only reader (18% of the index) to the filtered query.
    limit = 100 if hybrid else 50
    config = RetrievalConfig(hybrid=hybrid, max_overfetch=limit, view_refresh_s=3600)
    retriever = Retriever(index, demo.catalog, demo.embedder, config)
    vectors = dict(zip(QUESTIONS, demo.embedder.embed(QUESTIONS), strict=True))
    cases = [(q, r) for q in QUESTIONS for r in READERS]

    alone = [await retriever.search(q, r, 5, vector=vectors[q]) for q, r in cases]
    calls.clear()
    together = await asyncio.gather(
        *(retriever.search(q, r, 5, vector=vectors[q]) for q, r in cases)
    )

    assert [_summary(t) for t in together] == [_summary(a) for a in alone]
    assert [t.trace["strategy"] for t in together] == [a.trace["strategy"] for a in alone]
    over_fetched = sum(a.trace["strategy"].startswith("over-fetch") for a in alone)
    assert 0 < over_fetched < len(cases)  # both paths are exercised
    assert sum(calls) == over_fetched and len(calls) == 1  # one index call for all of them
    acl_sets = await demo.catalog.acl_sets()
    for (_, readers), result in zip(cases, together, strict=True):
        assert len(result.hits) == 5
        assert all(readers & acl_sets[hit.chunk.acl_key] for hit in result.hits)
