"""Routing under data boundaries: a tier that may not receive a source's classification is
neither chosen nor a fallback; the nearest allowed tier answers, or none (extractive)."""

from dataclasses import replace

from core.answering.router import RoutingInput, TierPrice, plan_route

OPEN = frozenset({"public", "internal"})
SMALL = TierPrice("small", 1e-7, 4e-7, 500, 0, OPEN)  # e.g. an external API
MEDIUM = TierPrice("medium", 1e-6, 4e-6, 800, 1)  # self-hosted: everything
LARGE = TierPrice("large", 1e-5, 3e-5, 1000, 2, OPEN)
TIERS = (SMALL, MEDIUM, LARGE)
SOURCES = (800, 700, 600, 500)
SIMPLE = RoutingInput("What is the VPN address?", (0.82, 0.51), 1, SOURCES, 200)
COMPARISON = RoutingInput(
    "Compare the parental leave policy in the US handbook versus the UK handbook "
    "and the contractor guide",
    (0.61, 0.59, 0.55),
    3,
    SOURCES,
    200,
)
SENSITIVE = ("internal", "public", "confidential", "internal")


def test_open_context_routes_as_before() -> None:
    plan = plan_route(replace(SIMPLE, classifications=("internal",) * 4), TIERS, max_cost_usd=None)
    assert [s.tier for s in plan.steps] == ["small", "medium", "large"]
    assert plan.boundary == {} and not plan.boundary_changed


def test_a_blocked_cheap_tier_gives_way_to_the_next_allowed_one() -> None:
    plan = plan_route(replace(SIMPLE, classifications=SENSITIVE), TIERS, max_cost_usd=None)
    assert [s.tier for s in plan.steps] == ["medium"]  # small and large are out, even as fallbacks
    assert plan.boundary == {"small": ["confidential"], "large": ["confidential"]}
    assert plan.boundary_changed and not plan.budget_capped
    assert "'small' may not receive confidential sources" in plan.reason


def test_a_blocked_strong_tier_steps_down() -> None:
    plan = plan_route(replace(COMPARISON, classifications=SENSITIVE), TIERS, max_cost_usd=None)
    assert plan.complexity.score >= 2 / 3  # would be 'large'
    assert [s.tier for s in plan.steps] == ["medium"] and plan.boundary_changed


def test_only_a_blocked_fallback_does_not_change_the_choice() -> None:
    tiers = (
        replace(SMALL, allowed_classifications=frozenset({"public", "internal", "confidential"})),
        MEDIUM,
        LARGE,
    )
    plan = plan_route(replace(SIMPLE, classifications=SENSITIVE), tiers, max_cost_usd=None)
    assert [s.tier for s in plan.steps] == ["small", "medium"]
    assert plan.boundary == {"large": ["confidential"]} and not plan.boundary_changed


def test_no_allowed_tier_means_no_steps() -> None:
    plan = plan_route(
        replace(SIMPLE, classifications=("restricted",)), (SMALL, LARGE), max_cost_usd=None
    )
    assert plan.steps == () and plan.boundary_changed and not plan.budget_capped
    assert "no tier may receive these sources" in plan.reason


def test_the_budget_still_applies_to_the_allowed_tiers() -> None:
    plan = plan_route(replace(SIMPLE, classifications=SENSITIVE), TIERS, max_cost_usd=0.0001)
    assert plan.steps == () and plan.budget_capped
    assert "cheapest: 'medium'" in plan.reason
