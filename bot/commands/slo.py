"""`answerdesk slo report`: the service agreement (`slo.file`) against the traces. Exit 1
when a target is missed or an error budget would run out before the period ends."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.commands.common import Subparsers, UsageError, database, run, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    slo = sub.add_parser("slo", help="service level objectives")
    slo.set_defaults(handler=handle)
    ssub = subcommands(slo, "slo_command")
    report = ssub.add_parser("report", help="each objective: actual, target, budget, burn")
    report.add_argument("--since", default="7d", help="report window (default 7d)")
    report.add_argument("--platform", help="only requests from this platform (slack, teams…)")
    report.add_argument("--file", type=Path, help="the SLO file (default: slo.file)")
    report.add_argument(
        "--release",
        nargs="*",
        metavar="ID",
        help="one report per release, side by side (no ID: the active release and the canary)",
    )
    report.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from bot.durations import parse_duration
    from bot.slo_file import SloFileError, load_slo_file

    try:
        since_s = parse_duration(args.since)
    except ValueError as exc:
        raise UsageError(f"slo report: --since: {exc}") from None
    path = args.file or settings.slo.file
    if path is None:
        raise UsageError("slo report: no SLO file: set slo.file or pass --file")
    try:
        spec = load_slo_file(Path(path))
    except SloFileError as exc:
        raise UsageError(f"slo report: {exc}") from None
    if args.release is not None:
        return _by_release(settings, spec, since_s, args)
    report = run(_report, settings, spec, since_s, args.platform)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(format_report(report))
    return 1 if report["failing"] else 0


async def _report(settings: Settings, spec: Any, since_s: float, platform: str | None) -> dict:
    from bot.service_levels import slo_report

    async with database(settings) as engine:
        return await slo_report(engine, spec, since_s=since_s, platform=platform)


def _by_release(settings: Settings, spec: Any, since_s: float, args: argparse.Namespace) -> int:
    """The agreement per release: during a canary, the candidate next to the active one."""

    async def reports() -> list[dict[str, Any]]:
        from adapters.db.releases import ReleaseError, SqlReleaseStore
        from bot.release_file import release_id, settings_release
        from bot.service_levels import slo_report

        async with database(settings) as engine:
            store = SqlReleaseStore(engine)
            state = await store.state()
            roles = {state.active or release_id(settings_release(settings)): "active"}
            if state.canary:
                roles[state.canary] = f"canary {state.share}%"
            chosen = list(roles)
            if args.release:
                try:
                    chosen = [(await store.get(ref)).id for ref in args.release]
                except ReleaseError as exc:
                    raise UsageError(f"slo report: {exc}") from None
            return [
                {
                    "release": release,
                    "role": roles.get(release),
                    "report": await slo_report(
                        engine, spec, since_s=since_s, platform=args.platform, release=release
                    ),
                }
                for release in dict.fromkeys(chosen)
            ]

    found = run(reports)
    if args.json:
        print(json.dumps({"releases": found}, ensure_ascii=False))
    else:
        print(format_releases(found))
    return 1 if any(r["report"]["failing"] for r in found) else 0


def format_releases(found: list[dict[str, Any]]) -> str:
    """One column per release: each objective's actual value and whether it is met."""
    from bot.service_levels import format_actual, format_target

    reports = [r["report"] for r in found]
    heads = [r["release"] + (f" ({r['role']})" if r["role"] else "") for r in found]
    width = max(22, *(len(h) for h in heads))
    window = reports[0]["window"]
    lines = [
        f"Service levels by release {window['since']} → {window['until']}",
        "",
        f"{'objective':24} {'target':>10} " + " ".join(f"{h:>{width}}" for h in heads),
    ]
    for i, objective in enumerate(reports[0]["objectives"]):
        name = objective["name"]
        cells = []
        for report in reports:
            o = report["objectives"][i]
            met = {True: "", False: " NO", None: ""}[o["met"]]
            cells.append(f"{format_actual(name, o['actual']) + met:>{width}}")
        lines.append(f"{name:24} {format_target(name, objective['target']):>10} " + " ".join(cells))
    requests = " ".join(f"{r['outcomes']['requests']:>{width}}" for r in reports)
    lines.append(f"{'requests':24} {'':>10} {requests}")
    failing = [
        f"{r['release']}: {', '.join(r['report']['failing'])}"
        for r in found
        if r["report"]["failing"]
    ]
    if failing:
        lines.append("FAILING: " + "; ".join(failing))
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    from bot.service_levels import format_actual, format_target

    window = report["window"]
    lines = [
        f"Service levels {window['since']} → {window['until']}"
        + (f" (platform {window['platform']})" if window["platform"] else ""),
        f"approved by {report['approved_by']} on {report['approved_on']}; "
        f"error budgets over the last {report['error_budget_period']['rolling']}",
        "",
        f"{'objective':24} {'target':>10} {'actual':>11} {'met':>4} {'budget':>8} "
        f"{'burn 1h':>8} {'6h':>6} {'3d':>6}  alert   owner",
    ]
    for o in report["objectives"]:
        met = {True: "yes", False: "NO", None: "-"}[o["met"]]
        left = "-" if o["budget_left"] is None else f"{o['budget_left'] * 100:.0f}%"
        burns = [_burn(o["burn"].get(w)) for w in ("1h", "6h", "3d")]
        lines.append(
            f"{o['name']:24} {format_target(o['name'], o['target']):>10} "
            f"{format_actual(o['name'], o['actual']):>11} {met:>4} {left:>8} "
            f"{burns[0]:>8} {burns[1]:>6} {burns[2]:>6}  {o['alert'] or '-':7} {o['owner']}"
        )
        if o["budget_runs_out"]:
            lines.append(f"    budget runs out {o['exhausted_at']} at the current burn rate")
    out = report["outcomes"]
    lines += [
        "",
        f"outcomes: {out['requests']} requests, {out['votes_up']} 👍 {out['votes_down']} 👎, "
        f"{out['handoffs']} handoffs, {out['tickets_opened']} tickets opened, "
        f"{out['tickets_resolved']} resolved"
        + (
            f" (median {out['resolution_p50_s']:.0f} s, p95 {out['resolution_p95_s']:.0f} s)"
            if out["resolution_p50_s"] is not None
            else ""
        ),
    ]
    if report["failing"]:
        lines.append(f"FAILING: {', '.join(report['failing'])}")
    return "\n".join(lines)


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
