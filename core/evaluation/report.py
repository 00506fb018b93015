"""The report of a run: `summary.json`, `report.md`, `cases.jsonl`, and terminal tables."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.evaluation.compare import Delta
from core.evaluation.library import Library
from core.evaluation.metrics import HEADLINE, METRICS, aggregate, metric_value
from core.evaluation.runner import CaseResult

WORST_CASES = 15
TAG_COLUMNS = (
    "retrieval.recall@5",
    "retrieval.page_recall@5",
    "retrieval.mrr",
    "generation.citation_validity",
    "generation.citation_recall",
    "generation.must_include_rate",
    "generation.must_not_include_rate",
    "generation.mode_accuracy",
    "generation.language_match",
    "generation.permission_leaks",
    "latency.p95_ms",
)


def summarize(library: Library, results: Sequence[CaseResult], label: str) -> dict[str, Any]:
    records = [r.to_json() for r in results]
    tags = sorted({tag for r in results for tag in r.case.tags})
    return {
        "library": library.name,
        "config": label,
        "cases": len(results),
        "drafts_skipped": library.drafts,
        **aggregate(records),
        "by_tag": {
            tag: {
                "cases": sum(tag in r["tags"] for r in records),
                **aggregate([r for r in records if tag in r["tags"]]),
            }
            for tag in tags
        },
    }


def write_report(
    directory: Path,
    summary: Mapping[str, Any],
    results: Sequence[CaseResult],
    deltas: Sequence[Delta] = (),
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    with (directory / "cases.jsonl").open("w", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    (directory / "report.md").write_text(markdown(summary, results, deltas), encoding="utf-8")


def markdown(
    summary: Mapping[str, Any], results: Sequence[CaseResult], deltas: Sequence[Delta] = ()
) -> str:
    overall = {d.metric: d for d in deltas if not d.scope}
    lines = [
        f"# Evaluation: {summary['library']} ({summary['config']})",
        "",
        f"{summary['cases']} cases"
        + (f", {summary['drafts_skipped']} drafts not run" if summary["drafts_skipped"] else "")
        + ".",
        "",
        "## Overall",
        "",
        "| metric | value |" + (" baseline | Δ | |" if deltas else ""),
        "|---|---|" + ("---|---|---|" if deltas else ""),
    ]
    for metric in METRICS:
        value = metric_value(summary, metric)
        if value is None and metric not in overall:
            continue
        row = f"| {metric} | {_fmt(value)} |"
        if deltas:
            d = overall.get(metric)
            row += (
                f" {_fmt(d.baseline)} | {_fmt(d.change, signed=True)} | "
                f"{'**regressed**' if d.regressed else ''} |"
                if d
                else " | | |"
            )
        lines.append(row)
    tags = summary.get("by_tag") or {}
    if tags:
        lines += ["", "## By tag", ""]
        shown = [
            m for m in TAG_COLUMNS if any(metric_value(t, m) is not None for t in tags.values())
        ]
        lines.append("| tag | cases | " + " | ".join(m.split(".", 1)[1] for m in shown) + " |")
        lines.append("|---|---|" + "---|" * len(shown))
        for tag, figures in tags.items():
            cells = " | ".join(_fmt(metric_value(figures, m)) for m in shown)
            lines.append(f"| {tag} | {figures['cases']} | {cells} |")
    regressed = [d for d in deltas if d.regressed]
    if regressed:
        lines += ["", "## Regressions", ""]
        lines += [f"- {d.describe()}" for d in regressed]
    worst = worst_cases(results)
    if worst:
        lines += [
            "",
            "## Worst cases",
            "",
            "`answerdesk trace show REQUEST_ID` explains each one.",
            "",
            "| case | request id | mode | what failed |",
            "|---|---|---|---|",
        ]
        for r in worst:
            what = "; ".join(r.failed).replace("|", "\\|")
            lines.append(f"| {r.case.id} | `{r.request_id}` | {r.mode} | {what} |")
    return "\n".join(lines) + "\n"


def worst_cases(results: Sequence[CaseResult], limit: int = WORST_CASES) -> list[CaseResult]:
    failing = [r for r in results if r.failed]
    failing.sort(key=lambda r: (not r.leaks, -len(r.failed), r.case.id))
    return failing[:limit]


def terminal(summary: Mapping[str, Any], deltas: Sequence[Delta] = ()) -> str:
    """The headline figures, with their change against the baseline when there is one."""
    overall = {d.metric: d for d in deltas if not d.scope}
    lines = [f"{summary['library']} ({summary['config']}): {summary['cases']} cases"]
    for metric in HEADLINE:
        value = metric_value(summary, metric)
        if value is None:
            continue
        d = overall.get(metric)
        change = ""
        if d is not None and d.change is not None:
            change = f"  ({_fmt(d.change, signed=True)}{' REGRESSED' if d.regressed else ''})"
        lines.append(f"  {metric:<34} {_fmt(value):>10}{change}")
    return "\n".join(lines)


def side_by_side(labels: Sequence[str], summaries: Sequence[Mapping[str, Any]]) -> str:
    """Configurations next to each other: quality, latency, cost."""
    width = max(12, *(len(label) for label in labels))
    lines = [f"{'metric':<34} " + " ".join(f"{label:>{width}}" for label in labels)]
    for metric in HEADLINE:
        values = [metric_value(s, metric) for s in summaries]
        if all(v is None for v in values):
            continue
        lines.append(f"{metric:<34} " + " ".join(f"{_fmt(v):>{width}}" for v in values))
    return "\n".join(lines)


def _fmt(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    if float(value).is_integer() and abs(value) >= 10:
        text = f"{value:+.0f}" if signed else f"{value:.0f}"
    else:
        text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return text
