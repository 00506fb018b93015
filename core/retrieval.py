"""Permission-filtered retrieval (ARCHITECTURE §3).

The permission check happens here, before anything leaves: a vector record carries its ACL
key, and only keys whose principals intersect the requester's are kept. A restricted
requester still gets a full top-k: we over-fetch from the unfiltered index in proportion to
the share of passages they may read, and because an unfiltered result is a prefix of the
global ranking, the readable records in it are exactly the prefix of the readable ranking.
When that share is too small for over-fetching to pay, the filter is pushed into the vector
query instead. Every record is then confirmed against the catalog, which drops vectors of
documents replaced or deleted a moment ago (the catalog commit is the atomic switch).
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.batching import BatchingEncoder, MicroBatcher
from core.documents import StoredChunk
from core.ports import Catalog, Embedder, VectorIndex, VectorMatch
from core.principals import Access


@dataclass(frozen=True, slots=True)
class RetrievalConfig:
    top_k: int = 5
    hybrid: bool = True
    rrf_k: int = 60
    candidates: int = 20  # per ranking, before fusion (20 measured best on the Zava set)
    max_overfetch: int = 400  # above this, push the filter into the vector query
    overfetch_margin: float = 3.0  # fetch 3× the expected need: a refetch costs far more
    # How often the ACL-set view is re-read. Safe to cache: an ACL key's principals never
    # change (the key hashes them), and a key the cached view lacks is unreadable (fail
    # closed); replaced or deleted chunks are still caught per query by the catalog check.
    view_refresh_s: float = 1.0
    # At most this many of the top hits from one document while others have candidates
    # (0: no limit). A long document (a 100-page plan booklet) otherwise fills the top k
    # with near-identical passages and crowds out the short one that answers; measured on
    # the Zava library: page recall@5 0.894 → 0.924 (see README, Evaluation).
    max_per_document: int = 2


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk: StoredChunk
    score: float  # cosine similarity between the question and the chunk
    dense_rank: int | None = None
    lexical_rank: int | None = None


@dataclass(frozen=True, slots=True)
class DenseResult:
    matches: list[VectorMatch]
    chunks: dict[str, StoredChunk]
    strategy: str


@dataclass(slots=True)
class SearchResult:
    hits: list[SearchHit]
    principals: frozenset[str]
    trace: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _PermissionView:
    version: int
    acl_sets: dict[str, frozenset[str]]
    counts: dict[str, int]

    def allowed_keys(self, access: Access) -> frozenset[str]:
        return frozenset(k for k, acl in self.acl_sets.items() if access.allows(acl))

    def readable_share(self, keys: frozenset[str]) -> float:
        total = sum(self.counts.values())
        if total == 0:
            return 1.0
        return sum(self.counts.get(k, 0) for k in keys) / total


class Retriever:
    def __init__(
        self,
        index: VectorIndex,
        catalog: Catalog,
        embedder: Embedder,
        config: RetrievalConfig | None = None,
    ) -> None:
        self._index = index
        self._catalog = catalog
        self._embedder = embedder
        self._encoder = BatchingEncoder(embedder)
        self._unfiltered: MicroBatcher[tuple[Sequence[float], int], list[VectorMatch]] = (
            MicroBatcher(self._query_batch)
        )
        self.config = config or RetrievalConfig()
        self._view: _PermissionView | None = None
        self._view_checked = 0.0
        self._view_lock = asyncio.Lock()

    def configured(self, config: RetrievalConfig) -> Retriever:
        """This retriever with another configuration (a release's), sharing the index, the
        catalog and the query batching."""
        if config == self.config:
            return self
        other = copy.copy(self)
        other.config = config
        return other

    async def encode(self, text: str) -> list[float]:
        return await self._encoder.encode(text)

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors for several texts at once, off the event loop."""
        return await asyncio.to_thread(self._embedder.embed, texts)

    async def search(
        self,
        query: str,
        access: Access | frozenset[str],
        k: int | None = None,
        *,
        vector: Sequence[float] | None = None,
    ) -> SearchResult:
        """Top-k hits for `query` among passages `access` may read (principals = one reader).
        `vector` is the query's embedding when the caller already has it."""
        if not isinstance(access, Access):
            access = Access(frozenset(access))
        k = k or self.config.top_k
        started = time.perf_counter()
        view = await self._permission_view()
        allowed = view.allowed_keys(access)
        if vector is None:
            vector = await self._encoder.encode(query)
        embedded = time.perf_counter()
        pool = max(k, self.config.candidates) if self.config.hybrid else k
        lexical: list[tuple[str, float]] = []
        if self.config.hybrid:  # the two rankings are independent: fetch them together
            (matches, strategy), lexical = await asyncio.gather(
                self._dense_matches(vector, allowed, pool, view),
                self._catalog.lexical_search(query, allowed, pool),
            )
        else:
            matches, strategy = await self._dense_matches(vector, allowed, pool, view)
        # One catalog read for both rankings' candidates: it confirms the dense matches are
        # current and brings the text of whichever candidates make the top k.
        chunks = await self._catalog.chunks_for_passages(
            list(dict.fromkeys([*(m.passage_id for m in matches), *(p for p, _ in lexical)]))
        )
        dense = DenseResult([m for m in matches if m.passage_id in chunks], chunks, strategy)
        hits = await self._fuse(vector, dense, lexical, allowed, k)
        return SearchResult(
            hits=hits,
            principals=access.principals,
            trace={
                "strategy": dense.strategy,
                "readable_share": round(view.readable_share(allowed), 4),
                "dense_candidates": len(dense.matches),
                "lexical_candidates": len(lexical),
                "embed_ms": round((embedded - started) * 1000, 2),
                "total_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    async def dense(
        self,
        vector: Sequence[float],
        allowed: frozenset[str],
        n: int,
        view: _PermissionView | None = None,
    ) -> DenseResult:
        """The n nearest readable passages, confirmed current, and the strategy used."""
        matches, strategy = await self._dense_matches(vector, allowed, n, view)
        current = await self._catalog.chunks_for_passages([m.passage_id for m in matches])
        return DenseResult([m for m in matches if m.passage_id in current], current, strategy)

    async def _dense_matches(
        self,
        vector: Sequence[float],
        allowed: frozenset[str],
        n: int,
        view: _PermissionView | None = None,
    ) -> tuple[list[VectorMatch], str]:
        """The n nearest readable passages (not yet confirmed current), and the strategy."""
        view = view or await self._permission_view()
        if not allowed:
            return [], "nothing readable"
        share = view.readable_share(allowed)
        fetch = (
            n if share >= 1.0 else math.ceil(n / max(share, 1e-9) * self.config.overfetch_margin)
        )
        if fetch <= self.config.max_overfetch:
            # Unfiltered queries of concurrent requests share one index call.
            matches = await self._unfiltered.submit((vector, fetch))
            readable = [m for m in matches if m.acl_key in allowed]
            if len(readable) >= n or len(matches) < fetch:
                return readable[:n], f"over-fetch {fetch}"
        matches = await asyncio.to_thread(self._index.query, vector, n, allowed)
        return [m for m in matches if m.acl_key in allowed], "filtered query"

    def _query_batch(self, items: list[tuple[Sequence[float], int]]) -> list[list[VectorMatch]]:
        """One unfiltered index query for many vectors. Each result for the largest n is a
        ranking of the whole index, so its first n_i matches are the answer for n_i."""
        results = self._index.query_many([vector for vector, _ in items], max(n for _, n in items))
        return [matches[:n] for matches, (_, n) in zip(results, items, strict=True)]

    async def _fuse(
        self,
        vector: Sequence[float],
        dense: DenseResult,
        lexical: list[tuple[str, float]],
        allowed: frozenset[str],
        k: int,
    ) -> list[SearchHit]:
        """Reciprocal-rank fusion of the dense and keyword rankings. `dense.chunks` holds the
        current chunk of every candidate of both rankings; the others are gone."""
        rrf: dict[str, float] = {}
        dense_rank = {m.passage_id: rank for rank, m in enumerate(dense.matches, start=1)}
        lexical_rank = {pid: rank for rank, (pid, _) in enumerate(lexical, start=1)}
        for ranks in (dense_rank, lexical_rank):
            for pid, rank in ranks.items():
                rrf[pid] = rrf.get(pid, 0.0) + 1.0 / (self.config.rrf_k + rank)
        chunks = dense.chunks
        # Belt and braces: a hit must be current and readable, whichever ranking found it;
        # filtered before the cut, so the top k stays full.
        eligible = [pid for pid in rrf if pid in chunks and chunks[pid].acl_key in allowed]
        ordered = sorted(eligible, key=lambda pid: (-rrf[pid], pid))
        best = _diverse(ordered, k, self.config.max_per_document, chunks)
        similarity = {m.passage_id: m.similarity for m in dense.matches}
        missing = [pid for pid in best if pid not in similarity]
        if missing:
            vectors = await asyncio.to_thread(self._index.vectors, missing)
            for pid, other in vectors.items():
                similarity[pid] = sum(a * b for a, b in zip(vector, other, strict=True))
        return [
            SearchHit(
                chunk=chunks[pid],
                score=round(float(similarity.get(pid, 0.0)), 4),
                dense_rank=dense_rank.get(pid),
                lexical_rank=lexical_rank.get(pid),
            )
            for pid in best
        ]

    async def allows(self, access: Access, acl_key: str) -> bool:
        """May `access` read chunks under this ACL key? Unknown keys are never readable."""
        view = await self._permission_view()
        acl = view.acl_sets.get(acl_key)
        return acl is not None and access.allows(acl)

    async def _permission_view(self) -> _PermissionView:
        view = self._view
        now = time.monotonic()
        if view is not None and now - self._view_checked < self.config.view_refresh_s:
            return view
        version = await self._catalog.version()
        self._view_checked = now
        if view is not None and view.version == version:
            return view
        async with self._view_lock:
            if self._view is None or self._view.version != version:
                acl_sets, counts = await asyncio.gather(
                    self._catalog.acl_sets(), self._catalog.passage_counts()
                )
                self._view = _PermissionView(version, acl_sets, counts)
            return self._view


def _diverse(
    ordered: list[str], k: int, per_document: int, chunks: dict[str, StoredChunk]
) -> list[str]:
    """The first k of `ordered`, taking at most `per_document` passages of one document
    before any document's further ones; the top k is always full when there are k."""
    if per_document <= 0:
        return ordered[:k]
    first: list[str] = []
    counts: dict[str, int] = {}
    for pid in ordered:
        document = chunks[pid].document_id
        if counts.get(document, 0) < per_document:
            first.append(pid)
            counts[document] = counts.get(document, 0) + 1
            if len(first) == k:
                return first
    chosen = set(first)
    return (first + [pid for pid in ordered if pid not in chosen])[:k]
