"""Routing under data boundaries: a tier that may not receive a source's classification is
neither chosen nor a fallback; the nearest allowed tier answers, or none (extractive)."""

from dataclasses import replace

from core.answering.router import TierPrice, plan_route
from tests.unit.test_router import COMPARISON, LARGE, MEDIUM, SIMPLE, SMALL

OPEN = frozenset({"public", "internal"})
# The same prices; small (e.g. an external API) and large may receive public and internal
# documents only, medium (self-hosted) everything.
SMALL = replace(SMALL, allowed_classifications=OPEN)
LARGE = replace(LARGE, allowed_classifications=OPEN)
TIERS: tuple[TierPrice, ...] = (SMALL, MEDIUM, LARGE)
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
