"""SLO arithmetic on synthetic requests: actual values, met or missed, error budget left,
burn rates per window, multi-window alerts and the budget projection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.slo import evaluate, month_bounds, standard_objectives
from core.stats import RequestRecord, buckets, percentile

# Mid-month, so the budget period (the calendar month) has days behind and ahead.
NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0
DAY = 86400.0


def record(age_s: float, **facts: object) -> RequestRecord:
    base: dict = {
        "platform": "slack",
        "mode": "answer",
        "latency_s": 1.0,
        "first_text_s": 1.0,
        "cost_usd": 0.001,
        "cache_hit": False,
        "internal_error": False,
        "vote": None,
    }
    base.update(facts)
    return RequestRecord(at=NOW - age_s, **base)


def one(spec: dict, records: list[RequestRecord], since_s: float = 7 * DAY) -> dict:
    [result] = evaluate(standard_objectives(spec), records, now=NOW, since_s=since_s)
    return result.to_dict()


def test_nearest_rank_percentile_agrees_with_the_bad_share() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([], 0.95) is None
    assert percentile([7.0], 0.95) == 7.0
    # p95 ≤ T exactly when at most 5% of the values exceed T
    for threshold in (94.0, 95.0, 96.0):
        bad = sum(1 for v in values if v > threshold)
        assert (percentile(values, 0.95) <= threshold) == (bad <= 5)


def test_latency_met_at_exactly_five_percent_slow_and_missed_above() -> None:
    spec = {"answer_latency": {"p95_s": 8.0, "owner": "platform"}}
    met = [record(i * 60, latency_s=9.0 if i < 5 else 2.0) for i in range(100)]
    result = one(spec, met)
    assert result["met"] is True
    assert result["actual"] == 2.0 and result["bad"] == 5 and result["events"] == 100
    missed = [record(i * 60, latency_s=9.0 if i < 6 else 2.0) for i in range(100)]
    result = one(spec, missed)
    assert result["met"] is False
    assert result["actual"] == 9.0 and result["bad"] == 6
    assert result["owner"] == "platform" and result["target"] == 8.0


def test_budget_left_and_burn_per_window() -> None:
    """availability 99%: 1% of requests may fail. In the last hour 4 of 20 failed (burn
    20); between 1 h and 6 h ago 0 of 80; earlier this month (before 3 days) 0 of 900."""
    spec = {"availability": {"min": 0.99, "owner": "sre"}}
    records = [record(i * 150, internal_error=i < 4) for i in range(20)]  # last 50 min
    records += [record(HOUR + 60 + i * 200, internal_error=False) for i in range(80)]
    records += [record(3 * DAY + 60 + i * 600, internal_error=False) for i in range(900)]
    result = one(spec, records, since_s=10 * DAY)  # the report window holds all 1000
    assert result["burn"]["1h"] == pytest.approx(4 / 20 / 0.01)  # 20
    assert result["burn"]["1h/short"] == pytest.approx(3 / 3 / 0.01)  # ages 0, 150, 300 s
    assert result["burn"]["6h"] == pytest.approx(4 / 100 / 0.01)  # 4
    assert result["burn"]["3d"] == pytest.approx(4 / 100 / 0.01)  # the same 100 requests
    assert result["alert"] == "page"  # 1 h and 5 min both beyond 14.4
    assert result["budget_left"] == pytest.approx(1 - 4 / 1000 / 0.01)  # 60% left
    assert result["actual"] == pytest.approx(1 - 4 / 1000)
    assert result["met"] is True


def test_alert_needs_both_windows_of_a_pair() -> None:
    """Failures that stopped 10 minutes ago: the 1 h burn is high, the 5 min burn is zero,
    so no page (the fast pair has reset and the 6 h pair does not reach 6); the slow burn
    still stands, so a ticket."""
    spec = {"degraded_share": {"max": 0.05, "owner": "sre"}}
    records = [record(600 + i * 60, mode="degraded" if i < 10 else "answer") for i in range(40)]
    records += [record(i * 30, mode="answer") for i in range(10)]
    result = one(spec, records)
    assert result["burn"]["1h"] == pytest.approx(4.0)  # 10 of 50 = 20% against 5%
    assert result["burn"]["1h/short"] == 0
    assert result["burn"]["6h"] == pytest.approx(4.0)
    assert result["alert"] == "ticket"


def test_slow_burn_opens_a_ticket() -> None:
    """1.5% handoffs over three days against a 1% limit, spread evenly: burn 1.5 over 3 d
    and about 2 over its 6 h short window; nothing fast enough to page."""
    spec = {"handoff_rate": {"max": 0.01, "owner": "support"}}
    records = [  # every 7.2 min for 3 days; 9 of 600 handed off
        record(i * 432, mode="handoff" if i % 67 == 33 else "answer") for i in range(600)
    ]
    result = one(spec, records)
    assert result["burn"]["3d"] == pytest.approx(1.5)
    assert result["burn"]["3d/short"] == pytest.approx(1 / 51 / 0.01)
    assert result["burn"]["1h"] == 0
    assert result["alert"] == "ticket"


def test_a_burn_above_one_exhausts_the_rolling_budget() -> None:
    """30-day rolling budget, 10% degraded allowed. 8+ days ago: 100 requests, none
    degraded; the last week: 100 requests, 12 degraded. Spent 12/200 = 60% of the budget;
    burning at 1.2, the rest is gone in P·0.4/(1.2 - 0.6) = 20 days."""
    spec = {"degraded_share": {"max": 0.10, "owner": "sre"}}
    records = [record(8 * DAY + i * 600) for i in range(100)]
    records += [record(i * 3000, mode="degraded" if i < 12 else "answer") for i in range(100)]
    result = one(spec, records)
    assert result["met"] is False  # 12% in the report window
    assert result["budget_left"] == pytest.approx(0.4)
    assert result["budget_runs_out"] is True
    exhausted = datetime.fromisoformat(result["exhausted_at"]).timestamp()
    assert exhausted == pytest.approx(NOW + 20 * DAY, abs=1)


def test_met_lately_but_the_budget_is_already_spent() -> None:
    """Three weeks ago things were bad (30 of 100 degraded); this week 5 of 100 is within
    the target, but the rolling budget is spent: the report still fails."""
    spec = {"degraded_share": {"max": 0.10, "owner": "sre"}}
    records = [
        record(8 * DAY + i * 600, mode="degraded" if i < 30 else "answer") for i in range(100)
    ]
    records += [record(i * 3000, mode="degraded" if i < 5 else "answer") for i in range(100)]
    result = one(spec, records)
    assert result["met"] is True
    assert result["budget_left"] == pytest.approx(1 - 0.175 / 0.10)
    assert result["budget_runs_out"] is True
    assert datetime.fromisoformat(result["exhausted_at"]).timestamp() == pytest.approx(NOW, abs=1)


def test_a_burn_below_one_lasts() -> None:
    spec = {"degraded_share": {"max": 0.10, "owner": "sre"}}
    records = [record(i * 3000, mode="degraded" if i < 3 else "answer") for i in range(100)]
    result = one(spec, records)
    assert result["met"] is True
    assert result["budget_left"] == pytest.approx(0.7)
    assert result["budget_runs_out"] is False and result["exhausted_at"] is None


def test_the_budget_period_is_the_files() -> None:
    """With a 7-day period, the bad week three weeks ago no longer counts."""
    spec = {"degraded_share": {"max": 0.10, "owner": "sre"}}
    records = [record(8 * DAY + i * 600, mode="degraded") for i in range(100)]
    records += [record(i * 3000) for i in range(100)]
    [result] = evaluate(
        standard_objectives(spec), records, now=NOW, since_s=7 * DAY, period_s=7 * DAY
    )
    assert result.budget_left == 1.0 and not result.budget_runs_out


def test_thumbs_down_counts_only_voted_answers_and_cache_latency_only_hits() -> None:
    spec = {
        "thumbs_down_share": {"max": 0.2, "owner": "content"},
        "cache_hit_latency": {"p95_s": 0.5, "owner": "platform"},
    }
    records = [record(60 * i) for i in range(50)]  # no votes, no cache hits
    records += [record(60 * i, vote=-1) for i in range(3)]
    records += [record(60 * i, vote=1) for i in range(7)]
    records += [record(60 * i, cache_hit=True, latency_s=0.2) for i in range(19)]
    records += [record(30, cache_hit=True, latency_s=3.0)]
    thumbs, cache = evaluate(standard_objectives(spec), records, now=NOW, since_s=DAY)
    assert thumbs.events == 10 and thumbs.bad == 3
    assert thumbs.actual == pytest.approx(0.3) and thumbs.met is False
    assert cache.events == 20 and cache.bad == 1 and cache.met is True
    assert cache.actual == pytest.approx(0.2)


def test_no_requests_is_not_judged() -> None:
    spec = {"answer_latency": {"p95_s": 8.0, "owner": "platform"}}
    result = one(spec, [])
    assert result["met"] is None and result["actual"] is None
    assert result["budget_left"] is None and result["burn"]["1h"] is None
    assert result["budget_runs_out"] is False


def test_mean_cost_and_monthly_budget() -> None:
    spec = {
        "cost_per_request_mean": {"max_usd": 0.01, "owner": "finance"},
        "monthly_budget": {"usd": 100.0, "owner": "finance"},
    }
    start, end = month_bounds(NOW)
    month = end - start
    # 14.5 days into the month: $60 spent so far, $20 of it in the last week.
    records = [record(7 * DAY + 60 + i * 600, cost_usd=0.04) for i in range(1000)]
    records += [record(i * 1200, cost_usd=0.04) for i in range(500)]
    mean, budget = evaluate(standard_objectives(spec), records, now=NOW, since_s=7 * DAY)
    assert mean.actual == pytest.approx(0.04) and mean.met is False
    assert mean.burn["1h"] == pytest.approx(4.0)
    assert budget.actual == pytest.approx(60.0)
    assert budget.met is True and budget.budget_left == pytest.approx(0.4)
    # $20 a week: the $40 left lasts 14 days, and 16.5 days of the month remain.
    assert budget.budget_runs_out is True
    assert budget.burn["3d"] == pytest.approx(20 / (7 * DAY) * month / 100, rel=0.02)


def test_buckets_split_records_by_time() -> None:
    records = [record(10), record(HOUR + 10), record(HOUR + 20), record(5 * HOUR)]
    groups = buckets(records, NOW - 3 * HOUR, NOW, HOUR)
    assert [len(b.records) for b in groups] == [0, 2, 1]
