"""Small statistics over answered requests, shared by the SLO report and the dashboard."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What service levels are computed from: one answered request, from its trace."""

    at: float  # when it finished, epoch seconds
    platform: str
    mode: str
    latency_s: float
    first_text_s: float  # time to the first visible answer text
    cost_usd: float
    cache_hit: bool
    internal_error: bool
    vote: int | None = None  # -1: someone voted 👎; +1: only 👍; None: no vote


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or
    below it. With it, "p95 ≤ T" holds exactly when at most 5% of the values exceed T, so
    the percentile target and its error budget never disagree."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(round(share * len(ordered), 9))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float
    records: list[RequestRecord]


def buckets(
    records: Sequence[RequestRecord], start: float, end: float, step_s: float
) -> list[Bucket]:
    """The records split into consecutive `step_s` buckets from `start` to `end`."""
    count = max(1, math.ceil((end - start) / step_s))
    out = [Bucket(start + i * step_s, []) for i in range(count)]
    for record in records:
        if start <= record.at < end:
            out[min(int((record.at - start) // step_s), count - 1)].records.append(record)
    return out


def share(records: Sequence[RequestRecord], is_bad: Callable[[RequestRecord], bool]) -> float:
    return sum(1 for r in records if is_bad(r)) / len(records) if records else 0.0
