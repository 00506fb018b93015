"""The service agreement, evaluated: each objective's actual value, whether it is met, the
error budget left in the period, and burn rates over the multi-window pairs of the SRE
workbook (chapter 5, "Alerting on SLOs").

Every objective but the mean cost is a *share of bad requests* with an allowed maximum:
a p95 latency target T allows 5% of requests slower than T (see `core.stats.percentile`),
availability 99.5% allows 0.5% internal errors, a 10% handoff limit allows 10% handoffs.
The error budget is that allowance over a rolling period (30 days unless the file says
otherwise); the burn rate over a window is the bad share in the window divided by the
allowance (1 = spending the budget exactly over one period). A burn rate above 1, kept up,
exhausts the rolling budget within one period: the projection says when. The monthly cost
budget is per calendar month (UTC): spend so far plus the report window's spending rate
until the month ends.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.stats import RequestRecord, percentile

LATENCY_SHARE = 0.95  # the p95 objectives
DEFAULT_PERIOD_S = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """Alert when the burn rate over `long_s` and over `short_s` both reach `threshold`."""

    name: str
    long_s: float
    short_s: float
    threshold: float
    severity: str  # page | ticket


# The workbook's multi-window, multi-burn-rate alerts for a 30-day budget: 2% of the budget
# gone in 1 h, or 5% in 6 h, pages; 10% in 3 days opens a ticket. The short window (1/12
# of the long one) makes an alert stop soon after the burning does.
DEFAULT_WINDOWS = (
    BurnWindow("1h", 3600, 300, 14.4, "page"),
    BurnWindow("6h", 6 * 3600, 1800, 6.0, "page"),
    BurnWindow("3d", 3 * 86400, 6 * 3600, 1.0, "ticket"),
)


@dataclass(frozen=True, slots=True)
class Objective:
    name: str
    kind: str  # share | mean_cost | budget
    owner: str
    target: float  # the number in the file (seconds, share, dollars)
    description: str
    allowed: float = 0.0  # share kind: the allowed share of bad requests
    is_valid: Callable[[RequestRecord], bool] = lambda _r: True
    is_bad: Callable[[RequestRecord], bool] = lambda _r: False
    actual: Callable[[Sequence[RequestRecord]], float | None] = lambda _r: None


def percentile_objective(
    name: str, owner: str, threshold_s: float, attribute: str, description: str, **kw: Any
) -> Objective:
    def value(r: RequestRecord) -> float:
        return float(getattr(r, attribute))

    return Objective(
        name,
        "share",
        owner,
        threshold_s,
        description,
        allowed=1 - LATENCY_SHARE,
        is_bad=lambda r: value(r) > threshold_s,
        actual=lambda rs: percentile([value(r) for r in rs], LATENCY_SHARE),
        **kw,
    )


def share_objective(
    name: str,
    owner: str,
    max_share: float,
    is_bad: Callable[[RequestRecord], bool],
    description: str,
    *,
    is_valid: Callable[[RequestRecord], bool] = lambda _r: True,
    good_share: bool = False,
) -> Objective:
    """`max_share` of bad requests allowed. With `good_share` the file states the minimum
    share of good ones (availability), and that is what is reported."""

    def actual(rs: Sequence[RequestRecord]) -> float | None:
        if not rs:
            return None
        bad = sum(1 for r in rs if is_bad(r)) / len(rs)
        return 1 - bad if good_share else bad

    return Objective(
        name,
        "share",
        owner,
        1 - max_share if good_share else max_share,
        description,
        allowed=max_share,
        is_valid=is_valid,
        is_bad=is_bad,
        actual=actual,
    )


def standard_objectives(spec: dict[str, dict[str, Any]]) -> list[Objective]:
    """The objectives of a validated SLO file (`objectives:` mapping name → target, owner)."""
    makers: dict[str, Callable[[dict[str, Any]], Objective]] = {
        "answer_latency": lambda o: percentile_objective(
            "answer_latency", o["owner"], o["p95_s"], "latency_s", "p95 answer latency (s)"
        ),
        "first_text_latency": lambda o: percentile_objective(
            "first_text_latency",
            o["owner"],
            o["p95_s"],
            "first_text_s",
            "p95 time to first visible text (s)",
        ),
        "cache_hit_latency": lambda o: percentile_objective(
            "cache_hit_latency",
            o["owner"],
            o["p95_s"],
            "latency_s",
            "p95 latency of cache hits (s)",
            is_valid=lambda r: r.cache_hit,
        ),
        "availability": lambda o: share_objective(
            "availability",
            o["owner"],
            1 - o["min"],
            lambda r: r.internal_error,
            "share answered without an internal error",
            good_share=True,
        ),
        "degraded_share": lambda o: share_objective(
            "degraded_share", o["owner"], o["max"], lambda r: r.mode == "degraded", "degraded"
        ),
        "handoff_rate": lambda o: share_objective(
            "handoff_rate", o["owner"], o["max"], lambda r: r.mode == "handoff", "handed off"
        ),
        "thumbs_down_share": lambda o: share_objective(
            "thumbs_down_share",
            o["owner"],
            o["max"],
            lambda r: (r.vote or 0) < 0,
            "👎 share of voted answers",
            is_valid=lambda r: r.vote is not None,
        ),
        "cost_per_request_p95": lambda o: percentile_objective(
            "cost_per_request_p95",
            o["owner"],
            o["max_usd"],
            "cost_usd",
            "p95 cost per request (USD)",
        ),
        "cost_per_request_mean": lambda o: Objective(
            "cost_per_request_mean",
            "mean_cost",
            o["owner"],
            o["max_usd"],
            "mean cost per request (USD)",
            actual=lambda rs: sum(r.cost_usd for r in rs) / len(rs) if rs else None,
        ),
        "monthly_budget": lambda o: Objective(
            "monthly_budget", "budget", o["owner"], o["usd"], "spend this month (USD)"
        ),
    }
    return [makers[name](target) for name, target in spec.items()]


@dataclass(slots=True)
class ObjectiveResult:
    name: str
    description: str
    owner: str
    target: float
    actual: float | None
    met: bool | None  # None: no requests to judge by
    events: int  # requests the objective counts in the report window
    bad: int | None
    budget_left: float | None  # share of the period's budget not yet spent
    burn: dict[str, float | None] = field(default_factory=dict)  # per window, long and short
    alert: str | None = None  # page | ticket, when a window pair fires
    exhausted_at: str | None = None  # ISO time the budget runs out at the report's burn rate
    budget_runs_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "target": self.target,
            "actual": _round(self.actual),
            "met": self.met,
            "events": self.events,
            "bad": self.bad,
            "budget_left": _round(self.budget_left),
            "burn": {k: _round(v) for k, v in self.burn.items()},
            "alert": self.alert,
            "exhausted_at": self.exhausted_at,
            "budget_runs_out": self.budget_runs_out,
        }


def month_bounds(now: float) -> tuple[float, float]:
    """The calendar month (UTC) containing `now`: the monthly cost budget's period."""
    day = datetime.fromtimestamp(now, UTC)
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    days = calendar.monthrange(day.year, day.month)[1]
    return start.timestamp(), start.timestamp() + days * 86400


def earliest_needed(
    now: float,
    since_s: float,
    windows: Sequence[BurnWindow] = DEFAULT_WINDOWS,
    period_s: float = DEFAULT_PERIOD_S,
) -> float:
    """The oldest record an evaluation looks at."""
    longest = max((w.long_s for w in windows), default=0.0)
    return min(now - since_s, now - longest, now - period_s, month_bounds(now)[0])


def evaluate(
    objectives: Sequence[Objective],
    records: Sequence[RequestRecord],
    *,
    now: float,
    since_s: float,
    period_s: float = DEFAULT_PERIOD_S,
    windows: Sequence[BurnWindow] = DEFAULT_WINDOWS,
) -> list[ObjectiveResult]:
    return [_evaluate(o, records, now, since_s, period_s, windows) for o in objectives]


def _within(records: Sequence[RequestRecord], now: float, seconds: float) -> list[RequestRecord]:
    return [r for r in records if now - seconds <= r.at <= now]


def _evaluate(
    objective: Objective,
    records: Sequence[RequestRecord],
    now: float,
    since_s: float,
    period_s: float,
    windows: Sequence[BurnWindow],
) -> ObjectiveResult:
    report = _within(records, now, since_s)
    if objective.kind == "budget":
        return _budget(objective, records, report, now, since_s, windows)
    valid = [r for r in report if objective.is_valid(r)]
    actual = objective.actual(valid)
    result = ObjectiveResult(
        objective.name,
        objective.description,
        objective.owner,
        objective.target,
        actual,
        None,
        len(valid),
        None,
        None,
    )
    if objective.kind == "mean_cost":
        result.met = None if actual is None else actual <= objective.target + 1e-12
        for window in windows:
            for label, seconds in _labels(window):
                mean = objective.actual(_within(records, now, seconds))
                result.burn[label] = None if mean is None else mean / objective.target
        return result

    def burn(rs: Sequence[RequestRecord]) -> float | None:
        counted = [r for r in rs if objective.is_valid(r)]
        if not counted:
            return None
        return sum(1 for r in counted if objective.is_bad(r)) / len(counted) / objective.allowed

    result.bad = sum(1 for r in valid if objective.is_bad(r))
    if valid:
        result.met = result.bad <= objective.allowed * len(valid) + 1e-9
    used = burn(_within(records, now, period_s))
    result.budget_left = None if used is None else 1 - used
    for window in windows:
        for label, seconds in _labels(window):
            result.burn[label] = burn(_within(records, now, seconds))
    result.alert = _alert(result.burn, windows)
    _project_rolling(result, burn(report), now, period_s)
    return result


def _budget(
    objective: Objective,
    records: Sequence[RequestRecord],
    report: Sequence[RequestRecord],
    now: float,
    since_s: float,
    windows: Sequence[BurnWindow],
) -> ObjectiveResult:
    budget = objective.target
    month_start, month_end = month_bounds(now)
    period_s = month_end - month_start
    in_period = [r for r in records if month_start <= r.at <= now]
    spent = sum(r.cost_usd for r in in_period)

    def burn(rs: Sequence[RequestRecord], seconds: float) -> float:
        return sum(r.cost_usd for r in rs) / seconds * period_s / budget

    result = ObjectiveResult(
        objective.name,
        objective.description,
        objective.owner,
        budget,
        spent,
        spent <= budget,
        len(in_period),
        None,
        1 - spent / budget,
    )
    for window in windows:
        for label, seconds in _labels(window):
            result.burn[label] = burn(_within(records, now, seconds), seconds)
    result.alert = _alert(result.burn, windows)
    rate = sum(r.cost_usd for r in report) / since_s  # dollars per second, lately
    if spent > budget:
        result.exhausted_at = _iso(now)
        result.budget_runs_out = True
    elif rate > 0 and now + (budget - spent) / rate < month_end:
        result.exhausted_at = _iso(now + (budget - spent) / rate)
        result.budget_runs_out = True
    return result


def _labels(window: BurnWindow) -> list[tuple[str, float]]:
    return [(window.name, window.long_s), (f"{window.name}/short", window.short_s)]


def _alert(burn: dict[str, float | None], windows: Sequence[BurnWindow]) -> str | None:
    for window in windows:  # page windows come first
        long_rate = burn.get(window.name)
        short_rate = burn.get(f"{window.name}/short")
        if long_rate is None or short_rate is None:
            continue
        if long_rate >= window.threshold and short_rate >= window.threshold:
            return window.severity
    return None


def _project_rolling(
    result: ObjectiveResult, rate: float | None, now: float, period_s: float
) -> None:
    """When does the rolling budget run out at the report window's burn rate? As the period
    rolls, old requests (spent share c = 1 - left, spread evenly) leave and new ones burn at
    `rate`: spent(t) = c·(1 - t/P) + rate·t/P reaches 1 at t = P·left / (rate - c), which is
    within one period exactly when rate > 1."""
    left = result.budget_left
    if left is None:
        return
    if left <= 0:
        result.exhausted_at = _iso(now)
        result.budget_runs_out = True
    elif rate is not None and rate > 1:
        result.exhausted_at = _iso(now + period_s * left / (rate - (1 - left)))
        result.budget_runs_out = True


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
