"""The dashboard: service levels over time as server-drawn charts, the SLO table with its
burn rates, and the outcomes (votes, handoffs, tickets) of the same range."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.db.trace_query import TraceQuery
from bot.console.charts import Series, line_chart
from bot.service_levels import format_actual, format_target, outcomes, slo_report
from bot.slo_file import SloFileError
from bot.wiring import Services
from core.stats import RequestRecord, buckets, percentile, share

# range → (span, bucket, label format)
RANGES = {
    "24h": (86400, 3600, "%H:%M"),
    "7d": (7 * 86400, 6 * 3600, "%m-%d %H:00"),
    "30d": (30 * 86400, 86400, "%m-%d"),
}


def _seconds(v: float) -> str:
    return f"{v:.2f} s" if v < 10 else f"{v:.0f} s"


def _percent(v: float) -> str:
    return f"{v * 100:.0f}%" if v >= 0.1 or v == 0 else f"{v * 100:.1f}%"


def _dollars(v: float) -> str:
    return f"${v:.4f}" if v < 1 else f"${v:.2f}"


def _per_bucket(
    groups: Sequence[list[RequestRecord]], value: Callable[[list[RequestRecord]], float | None]
) -> list[float | None]:
    return [value(g) if g else None for g in groups]


def _down_share(records: list[RequestRecord]) -> float | None:
    voted = [r for r in records if r.vote is not None]
    return share(voted, lambda r: (r.vote or 0) < 0) if voted else None


async def dashboard_context(services: Services, chosen: str, now: float) -> dict[str, Any]:
    if chosen not in RANGES:
        raise ValueError(f"range must be one of {', '.join(RANGES)}")
    span, step, label = RANGES[chosen]
    end = math.floor(now / step) * step + step  # the current bucket is the last one
    start = end - span
    records = await TraceQuery(services.engine).records(datetime.fromtimestamp(start, UTC))
    groups = [b.records for b in buckets(records, start, end, step)]
    labels = [
        datetime.fromtimestamp(start + i * step, UTC).strftime(label) for i in range(len(groups))
    ]
    platforms = sorted({r.platform for r in records})
    charts = [
        (
            "p95 answer latency",
            [
                Series(
                    "p95", _per_bucket(groups, lambda g: percentile([r.latency_s for r in g], 0.95))
                )
            ],
            _seconds,
        ),
        (
            "p95 time to first text",
            [
                Series(
                    "p95",
                    _per_bucket(groups, lambda g: percentile([r.first_text_s for r in g], 0.95)),
                )
            ],
            _seconds,
        ),
        (
            "cost per request (mean)",
            [Series("mean", _per_bucket(groups, lambda g: sum(r.cost_usd for r in g) / len(g)))],
            _dollars,
        ),
        (
            "cache hit rate",
            [Series("hits", _per_bucket(groups, lambda g: share(g, lambda r: r.cache_hit)))],
            _percent,
        ),
        (
            "degraded share",
            [
                Series(
                    "degraded",
                    _per_bucket(groups, lambda g: share(g, lambda r: r.mode == "degraded")),
                )
            ],
            _percent,
        ),
        (
            "requests by platform",
            [
                Series(p, [float(sum(1 for r in g if r.platform == p)) for g in groups])
                for p in platforms
            ]
            or [Series("requests", [None] * len(groups))],
            lambda v: f"{v:g}",
        ),
        ("👎 share of voted answers", [Series("👎", _per_bucket(groups, _down_share))], _percent),
    ]
    in_range = [r for r in records if start <= r.at <= now]
    context: dict[str, Any] = {
        "ranges": list(RANGES),
        "chosen": chosen,
        "charts": [
            (title, line_chart(title, labels, series, fmt, chart_id=f"chart-{i}"))
            for i, (title, series, fmt) in enumerate(charts)
        ],
        "slo": None,
        "slo_error": None,
        "slo_file": services.settings.slo.file,
        "format_target": format_target,
        "format_actual": format_actual,
    }
    path = services.settings.slo.file
    if path is not None:
        try:
            context["slo"] = await slo_report(services.engine, Path(path), since_s=span, now=now)
        except SloFileError as exc:
            context["slo_error"] = str(exc)
    tickets = await services.tickets.opened_since(datetime.fromtimestamp(now - span, UTC))
    context["outcomes"] = outcomes(in_range, tickets)
    return context
