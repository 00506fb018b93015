"""A run against its baseline: the change of every metric and whether it regressed.

A metric regresses when it moves the wrong way by more than the library's tolerance for it
(absolute, in the metric's own unit). Metrics without a tolerance (latency and cost unless
the library sets one) are shown with their change but never fail a run. Permission leaks are
not a matter of tolerance: any leak fails a run whatever the baseline says (see `leaked`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.evaluation.metrics import METRICS, metric_value

_EPSILON = 1e-9  # metrics are rounded to 4 digits; equal figures must never regress


@dataclass(frozen=True, slots=True)
class Delta:
    metric: str
    value: float | None
    baseline: float | None
    tolerance: float | None
    scope: str = ""  # "" for the whole library, else the tag

    @property
    def change(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline

    @property
    def regressed(self) -> bool:
        change = self.change
        if change is None or self.tolerance is None:
            return False
        worse = -change if METRICS[self.metric].higher_is_better else change
        return worse > self.tolerance + _EPSILON

    def describe(self) -> str:
        where = f" [{self.scope}]" if self.scope else ""
        return (
            f"{self.metric}{where}: {self.baseline:g} → {self.value:g} "
            f"(allowed change {self.tolerance:g})"
        )


def compare(
    summary: Mapping[str, Any],
    baseline: Mapping[str, Any],
    tolerance: Callable[[str], float | None],
) -> list[Delta]:
    """Every metric present in both, for the whole library and for each tag both share."""
    deltas = [
        Delta(m, metric_value(summary, m), metric_value(baseline, m), tolerance(m))
        for m in METRICS
        if metric_value(summary, m) is not None or metric_value(baseline, m) is not None
    ]
    tags = summary.get("by_tag") or {}
    base_tags = baseline.get("by_tag") or {}
    for tag in sorted(set(tags) & set(base_tags)):
        for metric in METRICS:
            value = metric_value(tags[tag], metric)
            base = metric_value(base_tags[tag], metric)
            if value is not None and base is not None:
                deltas.append(Delta(metric, value, base, tolerance(metric), tag))
    return deltas


def regressions(deltas: list[Delta]) -> list[Delta]:
    return [d for d in deltas if d.regressed]


def leaked(summary: Mapping[str, Any]) -> int:
    return int(metric_value(summary, "generation.permission_leaks") or 0)
