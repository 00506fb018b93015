"""Retrieval never lets an unreadable chunk out, and restricted users still get a full top-k.

Property-based: hypothesis draws ACLs for a small corpus, users' groups and queries; the
corpus is embedded by the real MiniLM model (memoised across examples) into real Chroma and
SQLite.
"""

from __future__ import annotations

import asyncio
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.embeddings.local import LocalMiniLMEmbedder
from bot.settings import Settings
from bot.wiring import build_services
from core.acl import AclPolicy, AclRule, glob_to_regex
from core.ingest.service import Ingestor
from core.principals import PUBLIC, may_read
from core.retrieval import RetrievalConfig, Retriever

GROUPS = ["hr", "finance", "it", "sales", "legal"]
PRINCIPALS = [PUBLIC, *(f"group:{g}" for g in GROUPS), "user:ceo@example.com"]
TOPICS = [
    "Holiday schedule: the office closes on the first Monday of September.",
    "Salary bands: a level four engineer earns up to 170 thousand dollars.",
    "Expense policy: hotel stays are reimbursed up to 250 dollars a night.",
    "VPN setup: install the client and sign in with your badge number.",
    "Parental leave: sixteen weeks of paid leave for every new parent.",
    "Quarterly close: accruals are booked by the third working day.",
    "Printer jams: open the rear tray and pull the sheet out gently.",
    "Legal hold: keep every email about the supplier dispute until notified.",
    "Sales commission: paid monthly at four percent of booked revenue.",
    "Laptop refresh: every three years, ask the IT desk for a new one.",
    "Dental plan: fillings are covered at eighty percent after the deductible.",
    "Security badges: lost badges are replaced by the front desk in a day.",
]
QUERIES = ["when does the office close", "how much do engineers earn", "hotel limit", "laptop"]


class MemoEmbedder(LocalMiniLMEmbedder):
    """The real model; vectors of texts seen before are reused between examples."""

    def embed(self, texts):  # type: ignore[no-untyped-def]
        return [list(_vector(text)) for text in texts]


@cache
def _vector(text: str) -> tuple[float, ...]:
    return tuple(LocalMiniLMEmbedder().embed([text])[0])


acls = st.lists(
    st.frozensets(st.sampled_from(PRINCIPALS), min_size=1, max_size=3),
    min_size=len(TOPICS),
    max_size=len(TOPICS),
)
users = st.frozensets(st.sampled_from(PRINCIPALS[1:]), max_size=3).map(lambda p: p | {PUBLIC})


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    doc_acls=acls,
    requesters=st.lists(users, min_size=1, max_size=4),
    query=st.sampled_from(QUERIES),
    k=st.integers(1, 6),
    hybrid=st.booleans(),
)
def test_no_unreadable_chunk_leaves_retrieval_and_top_k_is_full(
    doc_acls: list[frozenset[str]],
    requesters: list[frozenset[str]],
    query: str,
    k: int,
    hybrid: bool,
) -> None:
    asyncio.run(_check(doc_acls, requesters, query, k, hybrid))


async def _check(
    doc_acls: list[frozenset[str]],
    requesters: list[frozenset[str]],
    query: str,
    k: int,
    hybrid: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        rules = []
        for number, (text, acl) in enumerate(zip(TOPICS, doc_acls, strict=True)):
            name = f"doc{number:02d}.md"
            (root / name).write_text(f"# Topic {number}\n\n{text}\n")
            rules.append(AclRule(pattern=name, allow=acl, regex=glob_to_regex(name)))
        services = await build_services(Settings(data_dir=Path(tmp) / "var"))
        try:
            ingestor = Ingestor(services.catalog, services.index, MemoEmbedder())
            retriever = Retriever(
                services.index,
                services.catalog,
                MemoEmbedder(),
                RetrievalConfig(top_k=k, hybrid=hybrid, candidates=5, max_overfetch=12),
            )
            report = await ingestor.ingest([root], AclPolicy(frozenset({PUBLIC}), tuple(rules)))
            assert not report.failed
            acl_of = {f"doc{n:02d}.md": acl for n, acl in enumerate(doc_acls)}
            query_vector = np.array(_vector(query))
            everything = services.index._collection.get(include=["embeddings"])
            owners = await services.catalog.chunks_for_passages(everything["ids"])
            stored = {
                owners[pid].document_id: np.array(vector)
                for pid, vector in zip(everything["ids"], everything["embeddings"], strict=True)
            }
            for principals in requesters:
                result = await retriever.search(query, principals, k)
                hit_docs = [hit.chunk.document_id for hit in result.hits]
                # 1. Nothing unreadable leaves retrieval.
                for doc in hit_docs:
                    assert may_read(principals, acl_of[doc]), (doc, acl_of[doc], principals)
                # 2. A restricted requester still gets a full top-k...
                readable = [d for d, acl in acl_of.items() if may_read(principals, acl)]
                assert len(hit_docs) == min(k, len(readable))
                if not hybrid:
                    # 3. ...and it is the best k of what they may read, in order (brute force
                    # over the vectors actually stored).
                    ranked = sorted(readable, key=lambda d: -float(stored[d] @ query_vector))
                    assert hit_docs == ranked[:k]
        finally:
            await services.close()
