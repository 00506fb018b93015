"""The confidence gate: answer only when retrieval found something clearly relevant.

Weak evidence (the best hit scores low) or ambiguous evidence (the best hits from two
different documents score almost the same, and neither is strong) leads to one clarifying
question naming what the retrieved material does cover, instead of a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.retrieval import SearchHit


@dataclass(frozen=True, slots=True)
class GateConfig:
    min_score: float = 0.25  # below: too weak to answer from
    confident_score: float = 0.45  # at or above: confident whatever the margin
    min_margin: float = 0.02  # best vs best of another document, when not confident


@dataclass(frozen=True, slots=True)
class GateDecision:
    confident: bool
    reason: str
    best: float
    margin: float | None


def assess(hits: Sequence[SearchHit], config: GateConfig) -> GateDecision:
    if not hits:
        return GateDecision(False, "nothing retrieved", 0.0, None)
    best = max(h.score for h in hits)
    top_doc = max(hits, key=lambda h: h.score).chunk.document_id
    others = [h.score for h in hits if h.chunk.document_id != top_doc]
    margin = best - max(others) if others else None
    if best < config.min_score:
        return GateDecision(False, f"best score {best:.2f} < {config.min_score}", best, margin)
    if best < config.confident_score and margin is not None and margin < config.min_margin:
        return GateDecision(
            False,
            f"ambiguous: margin {margin:.3f} between documents < {config.min_margin}",
            best,
            margin,
        )
    return GateDecision(True, "confident", best, margin)


def clarifying_question(hits: Sequence[SearchHit], limit: int = 3) -> str:
    topics: list[str] = []
    for hit in sorted(hits, key=lambda h: -h.score):
        chunk = hit.chunk
        topic = (
            chunk.title if not chunk.heading_path else f"{chunk.title}: {chunk.heading_path[-1]}"
        )
        if topic not in topics and chunk.title not in [t.split(":")[0] for t in topics]:
            topics.append(topic)
        if len(topics) == limit:
            break
    if not topics:
        return (
            "I couldn't find anything on that in the documents I can use here. Could you "
            "rephrase it, or name the policy, system or benefit you mean?"
        )
    listed = topics[0] if len(topics) == 1 else ", ".join(topics[:-1]) + " or " + topics[-1]
    return (
        "I'm not sure I understood. The closest material I can use covers "
        f"{listed}. Which of these is your question about, or could you add a detail?"
    )
