"""Tier routing: a deterministic complexity score picks a model tier, a cost cap may trim it.

Complexity score (0..1) = sum of weight × feature value, every value in [0, 1]:

============  ======  ==============================================================
feature       weight  value
============  ======  ==============================================================
length        0.10    words / 40, saturating at 1 (40+ words)
structure     0.10    0.5 per signal, max 1: several "?"; an enumeration ("and" twice,
                      or 2+ list lines); a condition (if / unless / except)
reasoning     0.30    comparison cue (compare, difference, versus/vs, better, pros and
                      cons, which of) → 1; else 0.5 per distinct reasoning cue (why,
                      explain, calculate, how much would, step by step), max 1
documents     0.30    distinct documents in context: ≤1 → 0, 2 → 0.5, ≥3 → 1
ambiguity     0.10    retrieval margin top1 − top2: 1 − margin / 0.15, clamped to [0, 1]
                      (0 with fewer than two hits)
weak_top      0.10    1 when the top hit scores < 0.35 (or there are no hits), else 0
============  ======  ==============================================================

Tier choice: with n tiers ordered by strength, desired index = floor(score × n) clamped to
[0, n − 1]. Two tiers: score ≥ 0.5 → strong. Three tiers: < 1/3 → cheapest, < 2/3 → middle,
else strongest. For example a comparison across 3 documents scores ≥ 0.60 before length and
margin, so it gets the strong tier of two, and the strongest of three once the retrieval
margin is small.

Budget: costs are worst case (the full ``max_output_tokens`` is billed). The desired tier
gets all sources if that fits ``max_cost_usd``; otherwise the lowest-ranked sources are
dropped (never below ``min_sources``), then cheaper tiers are tried the same way. If no
tier fits, the plan has no steps and the caller answers extractively.

Data boundary: a tier whose ``allowed_classifications`` lack the classification of any
retrieved source is left out of the plan altogether (neither chosen nor a fallback); the
boundary is judged on the whole retrieved context, never worked around by dropping the
sensitive sources. The nearest allowed tier is chosen instead (cheaper first, as for the
budget), and with none the caller answers extractively. ``boundary_changed`` says whether
the boundary changed the outcome.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.classification import ALL_LEVELS, not_allowed

WEIGHTS: dict[str, float] = {
    "length": 0.10,
    "structure": 0.10,
    "reasoning": 0.30,
    "documents": 0.30,
    "ambiguity": 0.10,
    "weak_top": 0.10,
}
LENGTH_SATURATION_WORDS = 40
AMBIGUOUS_MARGIN = 0.15
WEAK_TOP_SCORE = 0.35

_COMPARISON_CUES: dict[str, re.Pattern[str]] = {
    "compare": re.compile(r"\bcompar(?:e|es|ed|ing|ison|isons)\b"),
    "difference": re.compile(r"\b(?:differences?|differ|differs)\b"),
    "versus": re.compile(r"\b(?:versus|vs)\b"),
    "better": re.compile(r"\bbetter\b"),
    "pros and cons": re.compile(r"\bpros and cons\b"),
    "which of": re.compile(r"\bwhich of\b"),
}
_REASONING_CUES: dict[str, re.Pattern[str]] = {
    "why": re.compile(r"\bwhy\b"),
    "explain": re.compile(r"\bexplain(?:s|ed|ing)?\b"),
    "calculate": re.compile(r"\bcalculat(?:e|es|ed|ing|ion)\b"),
    "how much would": re.compile(r"\bhow much would\b"),
    "step by step": re.compile(r"\bstep[\s-]by[\s-]step\b"),
}
_AND = re.compile(r"\band\b")
_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S", re.MULTILINE)
_CONDITION = re.compile(r"\b(?:if|unless|except)\b")


@dataclass(frozen=True, slots=True)
class TierPrice:
    name: str
    input_cost_per_token: float  # USD
    output_cost_per_token: float
    max_output_tokens: int
    strength: int  # 0 = cheapest tier, increasing (position in the configured list)
    allowed_classifications: frozenset[str] = ALL_LEVELS

    def __post_init__(self) -> None:
        if self.input_cost_per_token < 0 or self.output_cost_per_token < 0:
            raise ValueError(f"tier {self.name!r}: token costs must be >= 0")
        if self.max_output_tokens < 0:
            raise ValueError(f"tier {self.name!r}: max_output_tokens must be >= 0")


@dataclass(frozen=True, slots=True)
class RoutingInput:
    question: str
    retrieval_scores: tuple[float, ...]  # similarity of the top hits, best first (0..1)
    distinct_documents: int  # distinct documents among the hits that will go into context
    context_tokens_by_source: tuple[int, ...]  # token count of each source in rank order
    prompt_overhead_tokens: int  # system prompt + question tokens
    classifications: tuple[str, ...] = ()  # of each source, in rank order


@dataclass(frozen=True, slots=True)
class Complexity:
    score: float  # 0..1
    features: dict[str, float]  # each feature's value and contribution, for the trace
    reason: str


@dataclass(frozen=True, slots=True)
class RouteStep:
    tier: str
    sources_used: int  # how many sources (from the top) go into context for this tier
    estimated_cost_usd: float


@dataclass(frozen=True, slots=True)
class RoutePlan:
    complexity: Complexity
    steps: tuple[RouteStep, ...]  # first = chosen tier, then fallbacks; all within budget
    budget_capped: bool  # the budget trimmed context or changed the chosen tier
    reason: str
    # tier → classifications in the context it may not receive (left out of the plan)
    boundary: dict[str, list[str]] = field(default_factory=dict)
    boundary_changed: bool = False  # the boundary changed the chosen tier (or left none)


def estimate_cost(price: TierPrice, input_tokens: int) -> float:
    """Worst-case cost in USD: every input token plus the full output allowance."""
    return (
        input_tokens * price.input_cost_per_token
        + price.max_output_tokens * price.output_cost_per_token
    )


# --- complexity -------------------------------------------------------------------------


def _matched(cues: dict[str, re.Pattern[str]], text: str) -> list[str]:
    return [name for name, pattern in cues.items() if pattern.search(text)]


def _structure_signals(question: str, text: str) -> list[str]:
    signals = []
    if question.count("?") >= 2:
        signals.append("several questions")
    # "pros and cons" is a comparison cue, not an enumeration; don't count its "and" twice.
    ands = len(_AND.findall(text.replace("pros and cons", "")))
    if ands >= 2 or len(_LIST_LINE.findall(question)) >= 2:
        signals.append("an enumeration")
    if _CONDITION.search(text):
        signals.append("a condition")
    return signals


def _documents_value(distinct_documents: int) -> float:
    if distinct_documents >= 3:
        return 1.0
    return 0.5 if distinct_documents == 2 else 0.0


def complexity_score(inp: RoutingInput) -> Complexity:
    """Score how hard the question is (0 = trivial lookup, 1 = multi-document reasoning)."""
    text = inp.question.lower()
    words = len(inp.question.split())
    comparisons = _matched(_COMPARISON_CUES, text)
    reasonings = _matched(_REASONING_CUES, text)
    signals = _structure_signals(inp.question, text)
    scores = inp.retrieval_scores
    top = scores[0] if scores else None
    margin = scores[0] - scores[1] if len(scores) >= 2 else None

    values = {
        "length": min(words / LENGTH_SATURATION_WORDS, 1.0),
        "structure": min(0.5 * len(signals), 1.0),
        "reasoning": 1.0 if comparisons else min(0.5 * len(reasonings), 1.0),
        "documents": _documents_value(inp.distinct_documents),
        "ambiguity": (
            0.0 if margin is None else min(max(1.0 - margin / AMBIGUOUS_MARGIN, 0.0), 1.0)
        ),
        "weak_top": 1.0 if top is None or top < WEAK_TOP_SCORE else 0.0,
    }
    features: dict[str, float] = {}
    for name, value in values.items():
        features[name] = value
        features[f"{name}_contribution"] = WEIGHTS[name] * value
    features["words"] = float(words)
    features["distinct_documents"] = float(inp.distinct_documents)
    if top is not None:
        features["top_score"] = top
    if margin is not None:
        features["margin"] = margin
    score = min(max(sum(WEIGHTS[n] * v for n, v in values.items()), 0.0), 1.0)

    parts: list[str] = []
    if comparisons:
        parts.append("comparison cue (" + ", ".join(f"'{c}'" for c in comparisons) + ")")
    if reasonings:
        parts.append("reasoning cue (" + ", ".join(f"'{c}'" for c in reasonings) + ")")
    if signals:
        parts.append("structure: " + ", ".join(signals))
    if inp.distinct_documents >= 2:
        parts.append(f"{inp.distinct_documents} documents needed")
    if margin is not None and values["ambiguity"] > 0:
        parts.append(f"weak retrieval margin {margin:.2f}")
    if top is None:
        parts.append("no retrieval hits")
    elif values["weak_top"]:
        parts.append(f"weak top hit {top:.2f}")
    if values["length"] >= 0.5:
        parts.append(f"long question ({words} words)")
    lean = "a strong tier" if score >= 0.5 else "a cheap tier"
    head = ", ".join(parts) if parts else "short, single-document question with a clear top hit"
    return Complexity(score, features, f"{head} → score {score:.2f}, leans to {lean}")


# --- routing ----------------------------------------------------------------------------


def _sources(n: int) -> str:
    return f"{n} source" if n == 1 else f"{n} sources"


def _usd(value: float) -> str:
    if value and abs(value) < 1e-6:  # sub-micro-dollar amounts would print as "$0"
        return f"${value:.2e}"
    return f"${value:.6f}".rstrip("0").rstrip(".")


def _fit(
    price: TierPrice, inp: RoutingInput, max_cost_usd: float | None, floor: int
) -> RouteStep | None:
    """The most sources (top-ranked first, at least `floor`) this tier can take within the cap."""
    sources = inp.context_tokens_by_source
    for used in range(len(sources), floor - 1, -1):
        cost = estimate_cost(price, inp.prompt_overhead_tokens + sum(sources[:used]))
        if max_cost_usd is None or cost <= max_cost_usd:
            return RouteStep(price.name, used, cost)
    return None


def _validate(inp: RoutingInput, tiers: Sequence[TierPrice], min_sources: int) -> None:
    if min_sources < 0:
        raise ValueError(f"min_sources must be >= 0 (got {min_sources})")
    if inp.prompt_overhead_tokens < 0 or any(t < 0 for t in inp.context_tokens_by_source):
        raise ValueError("token counts must be >= 0")
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise ValueError(f"tier names must be unique (got {names})")


def _choose(desired: int, fit: list[RouteStep | None]) -> tuple[int, RouteStep] | None:
    # Downgrade first: the budget is the constraint, so the nearest cheaper tier is the next
    # best. Stronger tiers come last, only for configs where a stronger tier is cheaper.
    for i in (*range(desired, -1, -1), *range(desired + 1, len(fit))):
        step = fit[i]
        if step is not None:
            return i, step
    return None


def plan_route(
    inp: RoutingInput,
    tiers: Sequence[TierPrice],
    *,
    max_cost_usd: float | None,
    min_sources: int = 1,
) -> RoutePlan:
    """Pick the tier for the question's complexity, fit it to the budget, list fallbacks."""
    _validate(inp, tiers, min_sources)
    complexity = complexity_score(inp)
    if not tiers:
        return RoutePlan(complexity, (), False, "no model tiers configured; answer extractively")

    ordered = sorted(tiers, key=lambda t: t.strength)  # stable: ties keep configured order
    n_sources = len(inp.context_tokens_by_source)
    # With fewer sources than min_sources there is nothing to trim, so use what there is.
    floor = min(min_sources, n_sources)
    desired = min(max(math.floor(complexity.score * len(ordered)), 0), len(ordered) - 1)
    boundary = {
        t.name: levels
        for t in ordered
        if (levels := not_allowed(inp.classifications, t.allowed_classifications))
    }
    fits = [_fit(t, inp, max_cost_usd, floor) for t in ordered]
    fit = [None if t.name in boundary else f for t, f in zip(ordered, fits, strict=True)]
    want = ordered[desired].name
    head = f"complexity {complexity.score:.2f} → desired tier '{want}' ({desired + 1} of "
    head += f"{len(ordered)})"
    cap = "no cost cap" if max_cost_usd is None else f"cap {_usd(max_cost_usd)}"

    picked = _choose(desired, fit)
    # What the budget alone and the boundary alone would pick: whichever differs from the
    # outcome is what changed it.
    unbounded = _choose(desired, fits)
    ideal = _choose(
        desired, [None if t.name in boundary else _fit(t, inp, None, floor) for t in ordered]
    )
    boundary_changed = bool(boundary) and _tier(picked) != _tier(unbounded)
    if boundary:
        head += "; data boundary: " + "; ".join(
            f"'{name}' may not receive {', '.join(levels)} sources"
            for name, levels in boundary.items()
        )
    if ideal is None:
        reason = f"{head}; no tier may receive these sources; answer extractively"
        return RoutePlan(complexity, (), False, reason, boundary, True)
    if boundary and picked is not None:
        desired, want = ideal[0], ideal[1].tier  # the budget is judged from the allowed tier
    if picked is None:
        allowed = next(t for t in ordered if t.name not in boundary)
        cheapest = estimate_cost(
            allowed, inp.prompt_overhead_tokens + sum(inp.context_tokens_by_source[:floor])
        )
        reason = (
            f"{head}; no tier fits the {cap} even with {_sources(floor)} (cheapest: "
            f"'{allowed.name}' at {_usd(cheapest)}); answer extractively"
        )
        return RoutePlan(complexity, (), True, reason, boundary, boundary_changed)

    chosen, first = picked
    # Fallbacks: stronger tiers first (a failure may mean the question was too hard), then
    # cheaper ones nearest first; only tiers that fit, each once.
    order = (*range(chosen + 1, len(ordered)), *range(chosen - 1, -1, -1))
    steps = (first, *(s for i in order if (s := fit[i]) is not None))
    trimmed = first.sources_used < n_sources
    used = f"{first.sources_used} of {n_sources} sources" if trimmed else "all sources"
    if trimmed:
        used += " (lowest-ranked dropped to fit the budget)"
    detail = f"'{first.tier}' with {used} at {_usd(first.estimated_cost_usd)} ({cap})"
    if chosen == desired:
        reason = f"{head}; chose {detail}"
    else:
        verb = "downgraded" if chosen < desired else "upgraded"
        reason = f"{head}; '{want}' does not fit the {cap} even with {_sources(floor)}, "
        reason += f"{verb} to {detail}"
    if len(steps) > 1:
        reason += "; fallbacks: " + ", ".join(s.tier for s in steps[1:])
    capped = trimmed or chosen != desired
    return RoutePlan(complexity, steps, capped, reason, boundary, boundary_changed)


def _tier(picked: tuple[int, RouteStep] | None) -> str | None:
    return picked[1].tier if picked else None
