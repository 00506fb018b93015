"""Questions, answers, citations and notices: the core's platform-neutral vocabulary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from core.conversation.types import ConversationRef


class Mode(StrEnum):
    ANSWER = "answer"
    DEGRADED = "degraded"
    CLARIFY = "clarify"
    HANDOFF = "handoff"
    REFUSED = "refused"


class NoticeCode(StrEnum):
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_RATELIMITED = "model_ratelimited"
    FALLBACK_TIER = "fallback_tier"
    EXTRACTIVE_ONLY = "extractive_only"
    SOURCES_ONLY = "sources_only"
    RETRIEVAL_UNAVAILABLE = "retrieval_unavailable"
    BUDGET_CAPPED = "budget_capped"
    PRIVATE_ANSWER_AVAILABLE = "private_answer_available"
    CITATIONS_MISSING = "citations_missing"
    NO_SOURCES = "no_sources"
    DATA_BOUNDARY = "data_boundary"
    REVISED_AFTER_CHECK = "revised_after_check"


@dataclass(frozen=True, slots=True)
class Notice:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Audience:
    """Who will read the reply: `dm` (the asker), `public` (a public channel), or the
    listed members of a private channel or group chat."""

    kind: str  # "dm" | "public" | "members"
    members: tuple[str, ...] = ()  # emails, for kind == "members"

    @classmethod
    def parse(cls, text: str) -> Audience:
        value = text.strip()
        if value in ("dm", "public"):
            return cls(value)
        if value.startswith("members:"):
            members = tuple(
                sorted(
                    {m.strip().lower() for m in value[len("members:") :].split(",") if m.strip()}
                )
            )
            if members:
                return cls("members", members)
        raise ValueError(f"audience must be dm, public or members:a@x,b@y (got {text!r})")

    def __str__(self) -> str:
        return f"members:{','.join(self.members)}" if self.kind == "members" else self.kind


@dataclass(frozen=True, slots=True)
class Asker:
    """The person asking, as the platform identified them."""

    email: str | None
    platform: str = "cli"
    platform_user_id: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    asker: Asker
    audience: Audience = Audience("dm")
    conversation_id: str | None = None
    platform: str = "cli"
    locale: str | None = None
    where: ConversationRef | None = None  # the chat thread, when it came from one


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    chunk_id: str
    document_id: str
    title: str
    source: str
    page: int | None
    url: str | None = None
    classification: str | None = None  # the source's (core/classification.py)


@dataclass(slots=True)
class Answer:
    request_id: str
    mode: Mode
    text: str
    citations: list[Citation] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    tier: str | None = None
    model: str | None = None
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    principals: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=lambda: {"status": "bypass", "reason": ""})
    ticket: dict[str, Any] | None = None
    trace: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, with_trace: bool = False) -> dict[str, Any]:
        out = {
            "request_id": self.request_id,
            "mode": str(self.mode),
            "text": self.text,
            "citations": [asdict(c) for c in self.citations],
            "notices": [asdict(n) for n in self.notices],
            "tier": self.tier,
            "model": self.model,
            "cost_usd": round(self.cost_usd, 8),
            "latency_ms": round(self.latency_ms, 1),
            "principals": self.principals,
            "cache": self.cache,
            "ticket": self.ticket,
        }
        if with_trace:
            out["trace"] = self.trace
        return out
