import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.answering.router import (
    WEIGHTS,
    RouteStep,
    RoutingInput,
    TierPrice,
    complexity_score,
    estimate_cost,
    plan_route,
)

# Output allowances: small $0.0002, medium $0.0032, large $0.03 (worst case, always billed).
SMALL = TierPrice("small", 1e-7, 4e-7, 500, 0)
MEDIUM = TierPrice("medium", 1e-6, 4e-6, 800, 1)
LARGE = TierPrice("large", 1e-5, 3e-5, 1000, 2)
TIERS = (SMALL, MEDIUM, LARGE)
SOURCES = (800, 700, 600, 500)  # plus 200 overhead: 1000 / 1700 / 2300 / 2800 input tokens

SIMPLE = RoutingInput("What is the VPN address?", (0.82, 0.51), 1, SOURCES, 200)
COMPARISON = RoutingInput(
    "Compare the parental leave policy in the US handbook versus the UK handbook "
    "and the contractor guide",
    (0.61, 0.59, 0.55),
    3,
    SOURCES,
    200,
)
MODERATE = RoutingInput(  # two reasoning cues + two documents → middle of three tiers
    "Why did the travel policy change? Explain briefly.", (0.7, 0.63), 2, SOURCES, 200
)


def test_estimate_cost_is_worst_case() -> None:
    assert estimate_cost(LARGE, 2800) == pytest.approx(0.058)
    assert estimate_cost(SMALL, 0) == pytest.approx(0.0002)


def test_simple_short_question_goes_to_cheapest() -> None:
    plan = plan_route(SIMPLE, TIERS, max_cost_usd=None)
    assert plan.complexity.score < 1 / 3
    assert [s.tier for s in plan.steps] == ["small", "medium", "large"]
    assert all(s.sources_used == 4 for s in plan.steps)
    assert not plan.budget_capped
    assert "chose 'small'" in plan.reason


def test_comparison_across_three_documents_goes_to_strongest() -> None:
    complexity = complexity_score(COMPARISON)
    assert complexity.score >= 2 / 3
    assert "comparison cue ('compare', 'versus')" in complexity.reason
    assert "3 documents needed" in complexity.reason
    assert "weak retrieval margin 0.02" in complexity.reason
    plan = plan_route(COMPARISON, TIERS, max_cost_usd=None)
    assert plan.steps[0].tier == "large"
    assert plan_route(COMPARISON, (SMALL, LARGE), max_cost_usd=None).steps[0].tier == "large"


def test_features_explain_the_score() -> None:
    c = complexity_score(COMPARISON)
    contributions = sum(c.features[f"{name}_contribution"] for name in WEIGHTS)
    assert c.score == pytest.approx(contributions)
    assert c.features["reasoning"] == 1.0 and c.features["documents"] == 1.0
    assert c.features["margin"] == pytest.approx(0.02)
    assert math.isclose(sum(WEIGHTS.values()), 1.0)


@pytest.mark.parametrize(
    ("question", "feature", "value"),
    [
        ("Why is it so?", "reasoning", 0.5),
        ("What are the pros and cons of plan A?", "reasoning", 1.0),
        ("Which of the plans is cheaper?", "reasoning", 1.0),
        ("What is A? And B?", "structure", 0.5),
        (
            "Can I expense taxis if I travel at night and on weekends and holidays?",
            "structure",
            1.0,
        ),
        ("Pros and cons of remote work", "structure", 0.0),
        (" ".join(["word"] * 80), "length", 1.0),
    ],
)
def test_individual_features(question: str, feature: str, value: float) -> None:
    inp = RoutingInput(question, (0.9, 0.2), 1, (100,), 50)
    assert complexity_score(inp).features[feature] == pytest.approx(value)


def test_weak_top_and_missing_hits_raise_the_score() -> None:
    clear = complexity_score(RoutingInput("Office hours?", (0.9, 0.3), 1, (100,), 50))
    weak = complexity_score(RoutingInput("Office hours?", (0.3, 0.1), 1, (100,), 50))
    none = complexity_score(RoutingInput("Office hours?", (), 0, (), 50))
    assert weak.score > clear.score and none.score > clear.score
    assert "weak top hit 0.30" in weak.reason


def test_two_tiers_threshold_is_one_half() -> None:
    plan = plan_route(MODERATE, (SMALL, LARGE), max_cost_usd=None)
    assert 0.5 <= plan.complexity.score < 2 / 3
    assert plan.steps[0].tier == "large"
    clear = replace(MODERATE, retrieval_scores=(0.7, 0.5))  # no ambiguity: just under 0.5
    plan = plan_route(clear, (SMALL, LARGE), max_cost_usd=None)
    assert plan.complexity.score < 0.5
    assert plan.steps[0].tier == "small"
    assert plan_route(MODERATE, TIERS, max_cost_usd=None).steps[0].tier == "medium"


def test_budget_trims_context_first() -> None:
    plan = plan_route(COMPARISON, TIERS, max_cost_usd=0.05)
    assert plan.steps[0].tier == "large"
    assert plan.steps[0].sources_used == 2  # 1700 tokens: $0.047; 3 sources would be $0.053
    assert plan.steps[0].estimated_cost_usd == pytest.approx(0.047)
    assert plan.budget_capped
    assert "2 of 4 sources" in plan.reason


def test_budget_downgrades_when_trimming_is_not_enough() -> None:
    plan = plan_route(COMPARISON, TIERS, max_cost_usd=0.02)  # large needs $0.04 with 1 source
    assert plan.steps[0] == RouteStep("medium", 4, pytest.approx(0.006))
    assert plan.budget_capped
    assert "does not fit" in plan.reason and "downgraded to 'medium'" in plan.reason


def test_budget_downgrades_and_trims() -> None:
    plan = plan_route(COMPARISON, TIERS, max_cost_usd=0.005)
    assert [(s.tier, s.sources_used) for s in plan.steps] == [("medium", 2), ("small", 4)]
    assert plan.budget_capped


def test_min_sources_limits_trimming() -> None:
    plan = plan_route(COMPARISON, TIERS, max_cost_usd=0.05, min_sources=3)
    assert (plan.steps[0].tier, plan.steps[0].sources_used) == ("medium", 4)
    assert plan.budget_capped


def test_nothing_fits_returns_no_steps() -> None:
    plan = plan_route(COMPARISON, TIERS, max_cost_usd=0.0001)
    assert plan.steps == ()
    assert plan.budget_capped
    assert "no tier fits" in plan.reason and "extractive" in plan.reason


def test_uncapped_plan_is_not_budget_capped() -> None:
    plan = plan_route(COMPARISON, TIERS, max_cost_usd=None)
    assert not plan.budget_capped
    assert all(s.sources_used == 4 for s in plan.steps)


def test_fallbacks_are_stronger_then_cheaper() -> None:
    xl = TierPrice("xl", 1e-5, 3e-5, 1000, 3)
    inp = replace(MODERATE, retrieval_scores=(0.7, 0.5))  # score 0.47 → tier 1 of 0..3
    plan = plan_route(inp, (SMALL, MEDIUM, LARGE, xl), max_cost_usd=None)
    assert [s.tier for s in plan.steps] == ["medium", "large", "xl", "small"]
    # fallbacks are fitted to the budget too: large trimmed, xl likewise, small untouched
    plan = plan_route(inp, (SMALL, MEDIUM, LARGE, xl), max_cost_usd=0.05)
    assert [(s.tier, s.sources_used) for s in plan.steps] == [
        ("medium", 4),
        ("large", 2),
        ("xl", 2),
        ("small", 4),
    ]
    assert not plan.budget_capped  # the chosen step was untouched
    assert "fallbacks: large, xl, small" in plan.reason


def test_fallbacks_skip_tiers_over_budget() -> None:
    plan = plan_route(MODERATE, TIERS, max_cost_usd=0.01)
    assert [s.tier for s in plan.steps] == ["medium", "small"]


def test_tiers_are_ordered_by_strength_not_list_position() -> None:
    a = plan_route(COMPARISON, (LARGE, SMALL, MEDIUM), max_cost_usd=0.02)
    b = plan_route(COMPARISON, TIERS, max_cost_usd=0.02)
    assert a == b


def test_upgrades_only_when_a_stronger_tier_is_the_only_fit() -> None:
    odd_strong = TierPrice("promo", 1e-8, 1e-8, 100, 1)  # stronger but cheaper
    pricey_cheap = TierPrice("legacy", 1e-4, 1e-4, 1000, 0)
    plan = plan_route(SIMPLE, (pricey_cheap, odd_strong), max_cost_usd=0.01)
    assert [s.tier for s in plan.steps] == ["promo"]
    assert plan.budget_capped and "upgraded to 'promo'" in plan.reason


def test_no_tiers_and_bad_input() -> None:
    assert plan_route(SIMPLE, (), max_cost_usd=None).steps == ()
    with pytest.raises(ValueError):
        plan_route(SIMPLE, (SMALL, SMALL), max_cost_usd=None)
    with pytest.raises(ValueError):
        plan_route(SIMPLE, TIERS, max_cost_usd=None, min_sources=-1)
    with pytest.raises(ValueError):
        TierPrice("x", -1.0, 0.0, 10, 0)


def test_deterministic() -> None:
    for inp in (SIMPLE, COMPARISON, MODERATE):
        assert complexity_score(inp) == complexity_score(inp)
        assert plan_route(inp, TIERS, max_cost_usd=0.01) == plan_route(
            inp, TIERS, max_cost_usd=0.01
        )


_costs = st.floats(min_value=0, max_value=1e-4, allow_nan=False)


@st.composite
def _tiers(draw: st.DrawFn) -> list[TierPrice]:
    n = draw(st.integers(1, 4))
    return [
        TierPrice(f"t{i}", draw(_costs), draw(_costs), draw(st.integers(0, 2000)), i)
        for i in range(n)
    ]


@st.composite
def _inputs(draw: st.DrawFn) -> tuple[RoutingInput, int]:
    sources = tuple(draw(st.lists(st.integers(0, 5000), min_size=1, max_size=8)))
    scores = sorted(
        draw(st.lists(st.floats(0, 1), max_size=len(sources))),
        reverse=True,
    )
    inp = RoutingInput(
        draw(st.text(max_size=300)),
        tuple(scores),
        draw(st.integers(0, len(sources))),
        sources,
        draw(st.integers(0, 3000)),
    )
    return inp, draw(st.integers(0, len(sources)))


@given(
    _inputs(),
    _tiers(),
    st.one_of(st.none(), st.floats(min_value=0, max_value=0.5, allow_nan=False)),
)
def test_plan_properties(
    case: tuple[RoutingInput, int], tiers: list[TierPrice], cap: float | None
) -> None:
    inp, min_sources = case
    plan = plan_route(inp, tiers, max_cost_usd=cap, min_sources=min_sources)
    assert 0.0 <= plan.complexity.score <= 1.0
    assert len({s.tier for s in plan.steps}) == len(plan.steps)
    by_name = {t.name: t for t in tiers}
    for step in plan.steps:
        assert min_sources <= step.sources_used <= len(inp.context_tokens_by_source)
        if cap is not None:
            assert step.estimated_cost_usd <= cap
        tokens = inp.prompt_overhead_tokens + sum(inp.context_tokens_by_source[: step.sources_used])
        assert step.estimated_cost_usd == estimate_cost(by_name[step.tier], tokens)
    floor_tokens = inp.prompt_overhead_tokens + sum(inp.context_tokens_by_source[:min_sources])
    any_fits = cap is None or any(estimate_cost(t, floor_tokens) <= cap for t in tiers)
    assert bool(plan.steps) == any_fits
    if not plan.steps:
        assert plan.budget_capped
    if cap is None:
        assert len(plan.steps) == len(tiers) and not plan.budget_capped
    assert plan.reason
