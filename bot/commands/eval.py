"""`answerdesk eval`: run a query library through the service and score it, compare
configurations, gate on a baseline; `answerdesk eval harvest`: draft cases from traffic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.commands.common import Subparsers, UsageError, one_line, print_json
from bot.logging import configure_logging
from bot.settings import CONFIG_ENV, Settings, load_settings
from core.evaluation.library import Library, LibraryError, load_library
from core.tickets import TicketRef, TicketRequest

if TYPE_CHECKING:
    from bot.wiring import Services

_SINCE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(sub: Subparsers) -> None:
    ev = sub.add_parser(
        "eval",
        help="score a query library (eval LIBRARY), or draft cases from traffic (eval harvest)",
        description="eval LIBRARY [options]: run every case through the service and score "
        "retrieval and answers. eval harvest --since 7d --out FILE: draft cases from traces.",
    )
    ev.set_defaults(handler=handle, loads_settings=True)
    ev.add_argument("library", metavar="LIBRARY|harvest")
    ev.add_argument("--report", type=Path, metavar="DIR", help="write summary.json, report.md…")
    ev.add_argument("--baseline", type=Path, metavar="FILE", help="a summary.json to compare with")
    ev.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="compare with the library's baseline (or --baseline); exit 1 on a regression",
    )
    ev.add_argument(
        "--config",
        dest="configs",
        action="append",
        type=Path,
        metavar="FILE",
        help="a configuration to evaluate; give two or more to compare them side by side",
    )
    ev.add_argument("--concurrency", type=int, default=4, metavar="N")
    ev.add_argument("--with-cache", action="store_true", help="use the semantic cache")
    ev.add_argument("--json", action="store_true")
    harvest = ev.add_argument_group("eval harvest")
    harvest.add_argument("--since", default="7d", help="how far back: 30m, 24h, 7d, 2w")
    harvest.add_argument("--out", type=Path, metavar="FILE", help="the draft library (YAML)")
    harvest.add_argument("--sample", type=int, default=20, help="answered questions to sample")
    harvest.add_argument(
        "--similarity", type=float, default=0.9, help="cosine at which questions are duplicates"
    )


def handle(_: Settings | None, args: argparse.Namespace) -> int:
    if args.library == "harvest":
        return _harvest(args)
    return _evaluate(args)


# ------------------------------------------------------------------------------- eval run


@dataclass
class _Run:
    label: str
    settings: Settings
    summary: dict[str, Any] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)
    deltas: list[Any] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    report: str = ""


def _evaluate(args: argparse.Namespace) -> int:
    if args.out is not None:
        raise UsageError("eval: --out belongs to eval harvest")
    if not 1 <= args.concurrency <= 64:
        raise UsageError("eval: --concurrency must be between 1 and 64")
    try:
        library = load_library(Path(args.library))
    except LibraryError as exc:
        for problem in exc.problems:
            print(one_line(f"eval: {args.library}: {problem}"), file=sys.stderr)
        return 2
    baseline_path = args.baseline or (library.baseline if args.fail_on_regression else None)
    if args.fail_on_regression and baseline_path is None:
        raise UsageError("eval: --fail-on-regression needs --baseline or a library baseline")
    baseline = _read_baseline(baseline_path) if baseline_path else None
    if library.acl is not None:
        from core.acl import load_policy

        load_policy(library.acl)  # a bad reference ACL stops the run before it starts
    runs = [_Run(label, settings) for label, settings in _configurations(args.configs)]
    quiet_logging(runs[0].settings)
    for run in runs:
        asyncio.run(_run_one(run, library, args, baseline))
    if args.report is not None:
        _write_reports(args.report, runs)
    if args.json:
        print_json(
            runs[0].summary
            if len(runs) == 1
            else {"configs": [{"config": r.label, "summary": r.summary} for r in runs]},
            indent=2,
        )
    else:
        for run in runs:
            print(run.report)
        if len(runs) > 1:
            from core.evaluation.report import side_by_side

            print()
            print(side_by_side([r.label for r in runs], [r.summary for r in runs]))
    return _exit_code(runs)


def quiet_logging(settings: Settings) -> None:
    """One "answered" line per case would bury the report: warnings and errors only,
    unless the configuration asks for DEBUG."""
    level = settings.logging.level
    quiet = settings.logging.model_copy(update={"level": "WARNING" if level == "INFO" else level})
    configure_logging(quiet)


def _configurations(paths: list[Path] | None) -> list[tuple[str, Settings]]:
    """(label, settings) per --config FILE, else the configuration in effect."""
    if not paths:
        current = os.environ.get(CONFIG_ENV)
        return [(Path(current).stem if current else "default", load_settings())]
    labels = [p.stem for p in paths]
    if len(set(labels)) != len(labels):
        labels = [str(p) for p in paths]
    out = []
    for label, path in zip(labels, paths, strict=True):
        if not path.is_file():
            raise UsageError(f"eval: config file not found: {path}")
        os.environ[CONFIG_ENV] = str(path)
        out.append((label, load_settings()))
    return out


def _read_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"eval: cannot read the baseline {path}: {exc}") from None
    if not isinstance(data, dict) or "retrieval" not in data:
        raise UsageError(f"eval: {path} is not an eval summary.json")
    return data


async def _run_one(
    run: _Run, library: Library, args: argparse.Namespace, baseline: dict[str, Any] | None
) -> None:
    from adapters.db.evaluation import record_run
    from bot.wiring import build_services
    from core.evaluation.compare import compare, leaked, regressions
    from core.evaluation.report import summarize, terminal, worst_cases

    settings = run.settings
    if not args.with_cache:
        settings = settings.model_copy(
            update={"cache": settings.cache.model_copy(update={"enabled": False})}
        )
    async with _owned_index(settings):
        services = await build_services(settings, answer_tickets=DryRunTickets())
        try:
            run.results = await _run_cases(
                services, library, args.concurrency, run.label, active=not args.configs
            )
            run.summary = summarize(library, run.results, run.label)
            run.deltas = compare(run.summary, baseline, library.tolerance) if baseline else []
            run.regressions = [d.describe() for d in regressions(run.deltas)]
            worst = [
                {"case": r.case.id, "request_id": r.request_id, "mode": r.mode, "failed": r.failed}
                for r in worst_cases(run.results)
            ]
            passed = not run.regressions and not leaked(run.summary)
            await record_run(services.engine, run.summary, run.regressions, worst, passed)
        finally:
            await services.close()
    run.report = terminal(run.summary, run.deltas)


async def _run_cases(
    services: Services, library: Library, concurrency: int, label: str, *, active: bool
) -> list:
    """The cases through the release answering now (`active`; README "Launch checklist and
    releases"), or through the configuration as given (`--config`)."""
    from adapters.db.evaluation import corpus_chunks
    from core.acl import load_policy
    from core.evaluation.leaks import LeakDetector
    from core.evaluation.runner import EvalRunner

    reference = load_policy(library.acl) if library.acl else None
    leaks = LeakDetector(await corpus_chunks(services.engine), reference)
    release = (await services.releases.store.state()).active if active else None
    answers, retriever = await services.releases.resolve(release)
    runner = EvalRunner(
        answers,
        retriever,
        services.directory,
        leaks,
        judge=_judge(services.settings),
        concurrency=concurrency,
    )
    progress, close = _progress(len(library.cases), label)
    try:
        return await runner.run(library.cases, progress)
    finally:
        close()


class DryRunTickets:
    """Hand-offs during an evaluation are counted, not sent to the ticket queue."""

    async def create(self, request: TicketRequest) -> TicketRef:
        return TicketRef(id=f"eval-{request.request_id}", provider="eval (not created)")


def _judge(settings: Settings) -> Any:
    cfg = settings.eval
    if not cfg.judge_model:
        return None
    from adapters.llm.litellm_client import LiteLLMClient
    from core.answering.model import TierSpec
    from core.evaluation.judge import Judge

    tier = TierSpec(
        name="judge",
        model=cfg.judge_model,
        api_base=cfg.judge_api_base,
        api_key_env=cfg.judge_api_key_env,
        api_key=cfg.judge_api_key.get_secret_value() if cfg.judge_api_key else None,
        timeout_s=cfg.judge_timeout_s,
        max_output_tokens=300,
    )
    return Judge(LiteLLMClient(), tier)


@contextlib.asynccontextmanager
async def _owned_index(settings: Settings) -> AsyncIterator[None]:
    """The embedded index belongs to one process: hold its lock for the run, and refuse
    while a service owns it (its answers would be the service's, not this configuration's)."""
    if settings.chroma_url:
        yield
        return
    from bot.runtime import ServiceLock, running_service

    lock = ServiceLock(settings.data_dir)
    if not lock.try_acquire():
        if running_service(settings.data_dir) is not None:
            raise UsageError(
                f"eval: a service is running on {settings.data_dir}; stop it, or evaluate "
                "against a copy of the data dir"
            )
        await lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _progress(total: int, label: str) -> tuple[Callable[[Any], None] | None, Callable[[], None]]:
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="case", desc=label, file=sys.stderr)
    return (lambda _: bar.update(1)), bar.close


def _write_reports(directory: Path, runs: list[_Run]) -> None:
    from core.evaluation.report import write_report

    for run in runs:
        target = directory if len(runs) == 1 else directory / run.label.replace("/", "_")
        write_report(target, run.summary, run.results, run.deltas)


def _exit_code(runs: list[_Run]) -> int:
    from core.evaluation.compare import leaked

    failed = False
    for run in runs:
        leaks = leaked(run.summary)
        if leaks:
            print(f"eval: {run.label}: {leaks} case(s) leaked documents", file=sys.stderr)
            failed = True
        for line in run.regressions:
            print(f"eval: {run.label}: regression: {line}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


# -------------------------------------------------------------------------------- harvest


def _harvest(args: argparse.Namespace) -> int:
    if args.out is None:
        raise UsageError("eval harvest: give --out FILE for the draft cases")
    for option in ("report", "baseline", "configs"):
        if getattr(args, option):
            raise UsageError(f"eval harvest: --{option.rstrip('s')} belongs to eval LIBRARY")
    match = _SINCE.match(args.since)
    if not match:
        raise UsageError("eval harvest: --since must look like 30m, 24h, 7d or 2w")
    if not 0 <= args.sample <= 10_000:
        raise UsageError("eval harvest: --sample must be between 0 and 10000")
    if not 0 < args.similarity <= 1:
        raise UsageError("eval harvest: --similarity must be in (0, 1]")
    if args.out.exists():
        raise UsageError(f"eval harvest: {args.out} exists; choose a new file")
    settings = load_settings()
    quiet_logging(settings)
    since = datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    report = asyncio.run(_harvest_async(settings, since, args))
    document = {
        "name": f"harvested {datetime.now(UTC):%Y-%m-%d}",
        "description": f"Drafts from traces since {since:%Y-%m-%d %H:%M} UTC, for review.",
        "cases": report.drafts,
    }
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    summary = {
        "out": str(args.out),
        "drafts": len(report.drafts),
        "by_reason": report.by_reason,
        "traces": report.considered + report.redacted,
        "duplicates_dropped": report.duplicates,
        "without_question_text": report.redacted,
    }
    if args.json:
        print_json(summary)
    else:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.by_reason.items())
        print(
            f"{len(report.drafts)} draft cases ({reasons}) from {summary['traces']} traces "
            f"→ {args.out}; {report.duplicates} duplicates dropped, {report.redacted} "
            "without question text (tracing.redaction)"
        )
    return 0


async def _harvest_async(settings: Settings, since: datetime, args: argparse.Namespace) -> Any:
    from adapters.db.evaluation import corpus_chunks, downvoted, traces_since
    from bot.commands.common import database
    from bot.wiring import build_embedder
    from core.evaluation.harvest import harvest
    from core.evaluation.runner import PLATFORM

    async with database(settings) as engine:
        traces = await traces_since(engine, since, exclude_platforms=[PLATFORM])
        votes = await downvoted(engine, [str(t.get("request_id")) for t in traces])
        pages = {c.chunk_id: c.page for c in await corpus_chunks(engine)}
    embedder = build_embedder(settings)
    return await asyncio.to_thread(
        harvest,
        traces,
        votes,
        embedder.embed,
        redaction=settings.tracing.redaction,
        sample=args.sample,
        similarity=args.similarity,
        pages=pages,
    )
