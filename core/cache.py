"""The semantic cache, safe by construction (ARCHITECTURE §4).

An entry records every chunk that went into the model's context: its ACL key and its
document's version. A lookup is a hit only when, for the best similar entries:
  1. similarity ≥ the threshold, and the decisive-token guard passes (core/cache_guard.py:
     no number, name or qualifier in one question that the other lacks);
  2. the requester may read every one of those ACLs (a hard check, not a hint);
  3. none of those documents changed since (content or ACL), and none was deleted;
  4. the entry was made by the active release, and is younger than the TTL;
  5. retrieval for the new question, under the requester's permissions, agrees with the
     entry: it still finds every document the cached answer cites (two similar questions
     about different things retrieve different documents), and its top documents were all
     in the entry's context (a requester who may read more than the original asker would
     get a fuller fresh answer, so they get one);
  6. the data boundary holds for the model tier that wrote the answer: it may receive the
     classification of every chunk of the entry's context *and* of every chunk a fresh
     answer for this requester would put into context (their retrieval). A fresh answer
     for a requester whose context that tier could not receive would have been routed
     elsewhere (or quoted), so the cached one is not served to them either. Extractive
     answers went to no model and pass.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.cache_guard import decisive_difference
from core.classification import ALL_LEVELS, not_allowed


@dataclass(frozen=True, slots=True)
class ContextChunk:
    chunk_id: str
    document_id: str
    acl_key: str
    version: str  # the document's version when the answer was made
    classification: str = "restricted"  # unrecorded (older entries): fail closed


@dataclass(slots=True)
class CachedAnswer:
    id: str
    created_at: float
    release: str
    question: str
    answer: dict[str, Any]
    context: list[ContextChunk]
    request_id: str
    hits: int = 0


@dataclass(frozen=True, slots=True)
class CacheConfig:
    enabled: bool = True
    similarity_threshold: float = 0.80
    ttl_s: float = 7 * 24 * 3600
    candidates: int = 5


@dataclass(slots=True)
class CacheDecision:
    status: str  # "hit" | "miss" | "bypass"
    reason: str
    entry: CachedAnswer | None = None
    similarity: float | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason}


class CacheStore(Protocol):
    async def nearest(self, vector: Sequence[float], n: int) -> list[tuple[str, float]]: ...

    async def load(self, ids: Sequence[str]) -> dict[str, CachedAnswer]: ...

    async def save(self, entry: CachedAnswer, vector: Sequence[float]) -> None: ...

    async def delete(self, ids: Sequence[str]) -> None: ...

    async def record_hit(self, entry_id: str) -> None: ...

    async def same_question(self, question: str, n: int) -> list[str]:
        """Entries made for exactly this question, newest first: found without the vector
        store, for when it is down."""
        ...


# Access check and document versions are asked of the caller, who knows the catalog.
AllowsAcl = Callable[[str], Awaitable[bool]]
DocumentVersions = Callable[[Sequence[str]], Awaitable[dict[str, str]]]
# What retrieval finds for the new question under the requester's permissions, best first:
# (document id, classification) of each chunk a fresh answer would put into context.
RetrievedContext = Callable[[], Awaitable[list[tuple[str, str]]]]
TOP_DOCUMENTS_CHECKED = 3
NO_MODEL_TIERS = frozenset({"extractive", "sources"})  # answers no model wrote


class SemanticCache:
    def __init__(
        self,
        store: CacheStore,
        config: CacheConfig,
        release: str,
        tiers: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self._store = store
        self.config = config
        self.release = release
        self._tiers = dict(tiers or {})  # model tier → classifications it may receive

    def receivable(self, tier: str | None) -> frozenset[str]:
        """The classifications the tier that wrote an answer may receive."""
        if tier is None or tier in NO_MODEL_TIERS:
            return ALL_LEVELS
        return self._tiers.get(tier, frozenset())  # a tier no longer configured: nothing

    async def lookup(
        self,
        vector: Sequence[float],
        question: str,
        allows: AllowsAcl,
        versions: DocumentVersions,
        retrieved: RetrievedContext,
        now: float | None = None,
    ) -> CacheDecision:
        if not self.config.enabled:
            return CacheDecision("bypass", "cache disabled")
        now = time.time() if now is None else now
        try:
            nearest = await self._store.nearest(vector, self.config.candidates)
        except Exception:
            # The vector store is down: an entry made for the very same question can still
            # be served. Checks 1-4 and the entry's own data boundary hold as always; the
            # ones that compare with retrieval (5, 6) cannot run, and for an identical
            # question they guard a fuller answer, not who may read what.
            same = await self._store.same_question(question, self.config.candidates)
            if not same:
                raise
            return await self._check(
                [(i, 1.0) for i in same], question, allows, versions, None, now
            )
        close = [(i, s) for i, s in nearest if s >= self.config.similarity_threshold]
        if not close:
            best = f"{nearest[0][1]:.3f}" if nearest else "none"
            return CacheDecision(
                "miss", f"no entry above {self.config.similarity_threshold} (best {best})"
            )
        return await self._check(close, question, allows, versions, retrieved, now)

    async def _check(
        self,
        close: list[tuple[str, float]],
        question: str,
        allows: AllowsAcl,
        versions: DocumentVersions,
        retrieved: RetrievedContext | None,
        now: float,
    ) -> CacheDecision:
        """The first of the `close` entries every check passes (None `retrieved`: the
        vector store is down, see `lookup`)."""
        entries = await self._store.load([i for i, _ in close])
        decision = CacheDecision("miss", "")
        for entry_id, similarity in close:
            entry = entries.get(entry_id)
            why = (
                "entry gone"
                if entry is None
                else await self._reject(entry, question, allows, versions, retrieved, now)
            )
            if why is None and entry is not None:
                await self._store.record_hit(entry.id)
                decision.status, decision.entry, decision.similarity = "hit", entry, similarity
                decision.reason = f"similarity {similarity:.3f}, permissions and versions checked"
                if retrieved is None:
                    decision.reason = "the same question (vector store down), " + (
                        "permissions and versions checked"
                    )
                return decision
            decision.rejected.append(
                {"entry": entry_id, "similarity": round(similarity, 4), "why": why}
            )
        decision.reason = "; ".join(str(r["why"]) for r in decision.rejected)
        return decision

    async def _reject(
        self,
        entry: CachedAnswer,
        question: str,
        allows: AllowsAcl,
        versions: DocumentVersions,
        retrieved: RetrievedContext | None,
        now: float,
    ) -> str | None:
        if entry.release != self.release:
            return "made by another release"
        if now - entry.created_at > self.config.ttl_s:
            return "expired"
        differs = decisive_difference(entry.question, question)
        if differs:
            return f"a decisive detail differs ({', '.join(differs[:3])})"
        for acl in {c.acl_key for c in entry.context}:
            if not await allows(acl):
                return "requester may not read every source"
        current = await versions(sorted({c.document_id for c in entry.context}))
        for chunk in entry.context:
            if current.get(chunk.document_id) != chunk.version:
                return "a source document changed or was deleted"
        tier = entry.answer.get("tier")
        receivable = self.receivable(tier)
        refused = not_allowed((c.classification for c in entry.context), receivable)
        if refused:
            return f"tier '{tier}' may not receive the entry's {', '.join(refused)} sources"
        if retrieved is None:
            return None
        context = await retrieved()
        documents = list(dict.fromkeys(document for document, _ in context))
        cited = {c["document_id"] for c in entry.answer.get("citations", [])}
        if cited - set(documents):
            return "retrieval for this question does not find the cited documents"
        used = {c.document_id for c in entry.context}
        if set(documents[:TOP_DOCUMENTS_CHECKED]) - used:
            return "retrieval for this requester finds documents the cached answer did not use"
        refused = not_allowed((level for _, level in context), receivable)
        if refused:
            return f"tier '{tier}' could not receive this requester's {', '.join(refused)} sources"
        return None

    async def store(
        self,
        vector: Sequence[float],
        question: str,
        answer: dict[str, Any],
        context: list[ContextChunk],
        request_id: str,
    ) -> str | None:
        if not self.config.enabled or not context:
            return None
        entry = CachedAnswer(
            id=uuid.uuid4().hex,
            created_at=time.time(),
            release=self.release,
            question=question,
            answer=answer,
            context=context,
            request_id=request_id,
        )
        await self._store.save(entry, vector)
        return entry.id
