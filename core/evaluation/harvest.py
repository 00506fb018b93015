"""Draft library cases from real traffic, for a person to review.

Priority: answers someone voted 👎, then hand-offs to a human, then clarifying questions,
then a sample of the rest. Questions that mean the same as one already drafted (cosine of
their embeddings at or above the threshold) are dropped, so a question asked fifty times
becomes one case. Every draft carries the asker's identity and audience, what was retrieved,
and `status: draft`: the runner skips drafts until someone sets the expectations.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.answering.redaction import redact_for_trace

REASONS = ("downvoted", "handoff", "clarify", "sample")
_FULLY_REDACTED = re.compile(r"^\[redacted: \d+ characters\]$")


@dataclass(frozen=True, slots=True)
class HarvestReport:
    drafts: list[dict[str, Any]]
    considered: int
    duplicates: int
    redacted: int  # traces whose question text was not kept (tracing.redaction: all)
    by_reason: dict[str, int]


def reason_of(trace: Mapping[str, Any], downvoted: set[str]) -> str:
    if trace.get("request_id") in downvoted:
        return "downvoted"
    if trace.get("mode") in ("handoff", "clarify"):
        return str(trace["mode"])
    return "sample"


def harvest(
    traces: Sequence[Mapping[str, Any]],
    downvoted: set[str],
    embed: Callable[[list[str]], list[list[float]]],
    *,
    redaction: str,
    sample: int = 20,
    similarity: float = 0.9,
    seed: int = 0,
    pages: Mapping[str, int | None] | None = None,
) -> HarvestReport:
    """Draft cases from `traces` (any order); `redaction` is the current tracing setting,
    applied again so that a stricter setting also covers traces written before it. `pages`
    maps chunk ids to their page, for the retrieved sources a draft lists."""
    usable: list[tuple[str, Mapping[str, Any], str]] = []
    redacted = 0
    for trace in traces:
        raw = str(trace.get("question") or "").strip()
        question = redact_for_trace(raw, redaction) if raw else ""
        if not question or _FULLY_REDACTED.match(question):
            redacted += 1
            continue
        usable.append((reason_of(trace, downvoted), trace, question))
    ordered: list[tuple[str, Mapping[str, Any], str]] = []
    for reason in REASONS:
        group = [item for item in usable if item[0] == reason]
        group.sort(key=lambda item: -float(item[1].get("created_at") or 0))  # newest first
        if reason == "sample":
            group = random.Random(seed).sample(group, min(sample, len(group)))
        ordered.extend(group)
    vectors = embed([question for _, _, question in ordered]) if ordered else []
    kept: list[list[float]] = []
    drafts: list[dict[str, Any]] = []
    by_reason = dict.fromkeys(REASONS, 0)
    for (reason, trace, question), vector in zip(ordered, vectors, strict=True):
        if any(_cosine(vector, other) >= similarity for other in kept):
            continue
        kept.append(vector)
        by_reason[reason] += 1
        drafts.append(draft_case(trace, question, reason, pages or {}))
    return HarvestReport(drafts, len(usable), len(ordered) - len(drafts), redacted, by_reason)


def draft_case(
    trace: Mapping[str, Any], question: str, reason: str, pages: Mapping[str, int | None]
) -> dict[str, Any]:
    hits = ((trace.get("stages") or {}).get("retrieval") or {}).get("hits") or []
    request_id = str(trace.get("request_id") or "")
    return {
        "id": f"harvest-{request_id}",
        "status": "draft",
        "question": question,
        "as": trace.get("asker") or "unknown@unknown.invalid",
        "audience": trace.get("audience") or "dm",
        "expected_sources": [],
        "must_include": [],
        "expected_mode": "answer",
        "tags": ["harvested", reason],
        "notes": f"harvested ({reason}); the service answered in mode {trace.get('mode')}. "
        "Fill expected_sources, must_include and expected_mode, then remove status: draft.",
        "origin": {
            "request_id": request_id,
            "reason": reason,
            "mode": trace.get("mode"),
            "created_at": trace.get("created_at"),
            "platform": trace.get("platform"),
            "retrieved": [
                {
                    "document_id": h.get("document_id"),
                    "page": pages.get(str(h.get("chunk_id"))),
                    "score": h.get("score"),
                }
                for h in hits
                if isinstance(h, dict)
            ],
            "cited": list(trace.get("citations") or []),
        },
    }


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5)
    return dot / norm if norm else 0.0
