"""The SLO report: the agreement file evaluated against the traces, with the outcomes
(votes, handoffs, ticket resolution) joined on the request id. Shared by `answerdesk slo
report` and the console's dashboard."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.tickets import DbTicketQueue
from adapters.db.trace_query import TraceQuery
from bot.slo_file import SloFile, load_slo_file
from core.slo import earliest_needed, evaluate, month_bounds
from core.stats import RequestRecord, percentile


async def slo_report(
    engine: AsyncEngine,
    slo: SloFile | Path,
    *,
    since_s: float,
    platform: str | None = None,
    now: float | None = None,
    release: str | None = None,
) -> dict[str, Any]:
    spec = load_slo_file(slo) if isinstance(slo, Path) else slo
    now = time.time() if now is None else now
    period_s = spec.period_s
    oldest = earliest_needed(now, since_s, period_s=period_s)
    records = await TraceQuery(engine).records(
        datetime.fromtimestamp(oldest, UTC), platform, release
    )
    results = evaluate(spec.to_objectives(), records, now=now, since_s=since_s, period_s=period_s)
    month_start, month_end = month_bounds(now)
    window = [r for r in records if now - since_s <= r.at <= now]
    start = datetime.fromtimestamp(now - since_s, UTC)
    tickets = await DbTicketQueue(engine).opened_since(start)
    if release:  # the tickets of this release's answers
        answered = await TraceQuery(engine).request_ids(start, release)
        tickets = [t for t in tickets if t.get("request_id") in answered]
    objectives = [r.to_dict() for r in results]
    failing = [o["name"] for o in objectives if o["met"] is False or o["budget_runs_out"]]
    return {
        "approved_by": spec.approved_by,
        "approved_on": spec.approved_on.isoformat(),
        "generated_at": _iso(now),
        "window": {
            "since": _iso(now - since_s),
            "until": _iso(now),
            "platform": platform,
            "release": release,
        },
        "error_budget_period": {"since": _iso(now - period_s), "rolling": spec.period},
        "month": {"start": _iso(month_start), "end": _iso(month_end)},
        "objectives": objectives,
        "outcomes": outcomes(window, tickets),
        "failing": failing,
    }


def outcomes(records: list[RequestRecord], tickets: list[dict[str, Any]]) -> dict[str, Any]:
    resolved = [t["resolution_s"] for t in tickets if t["resolution_s"] is not None]
    return {
        "requests": len(records),
        "votes_up": sum(1 for r in records if r.vote is not None and r.vote > 0),
        "votes_down": sum(1 for r in records if r.vote is not None and r.vote < 0),
        "handoffs": sum(1 for r in records if r.mode == "handoff"),
        "tickets_opened": len(tickets),
        "tickets_resolved": len(resolved),
        "resolution_p50_s": percentile(resolved, 0.5),
        "resolution_p95_s": percentile(resolved, 0.95),
    }


def format_target(name: str, value: float) -> str:
    if name.endswith("latency"):
        return f"≤ {value:g} s"
    if name == "availability":
        return f"≥ {value * 100:g}%"
    if name.startswith("cost_per_request"):
        return f"≤ ${value:g}"
    if name == "monthly_budget":
        return f"${value:g}"
    return f"≤ {value * 100:g}%"


def format_actual(name: str, value: float | None) -> str:
    if value is None:
        return "no data"
    if name.endswith("latency"):
        return f"{value:.2f} s"
    if name.startswith("cost_per_request") or name == "monthly_budget":
        return f"${value:.4f}"
    return f"{value * 100:.2f}%"


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")
