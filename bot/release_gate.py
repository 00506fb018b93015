"""The evaluation of a release: the gate of `release activate` and an item of the pre-launch
checklist. The library runs through the release's own answer service (cache bypassed,
hand-offs counted and not sent, traces written with platform `eval` like `answerdesk
eval`), and the token counts of every model call are kept for cost estimates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.commands.eval import DryRunTickets
from bot.settings import Settings
from bot.wiring import Services
from core.answering.tracing import FanOutSink
from core.evaluation.compare import compare, leaked, regressions
from core.evaluation.library import Library, load_library
from core.evaluation.metrics import HEADLINE, metric_value

DEMO_LIBRARY = Path(__file__).resolve().parent / "demo" / "eval" / "library.yaml"


def gate_library(settings: Settings, given: str | None = None) -> Path:
    """The library the gate runs: --library, else releases.gate_library, else the demo's."""
    return Path(given) if given else settings.releases.gate_library or DEMO_LIBRARY


@dataclass
class _Calls:
    """The model calls of the run's answers, from their traces."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0

    def submit(self, trace: dict[str, Any]) -> None:
        self.requests += 1
        for call in trace.get("model_calls") or []:
            if call.get("outcome") == "ok":
                self.calls.append(
                    {
                        "tier": call.get("tier"),
                        "input_tokens": int(call.get("input_tokens") or 0),
                        "output_tokens": int(call.get("output_tokens") or 0),
                        "cost_usd": float(call.get("cost_usd") or 0.0),
                    }
                )


@dataclass
class Evaluation:
    release: str
    summary: dict[str, Any]
    calls: list[dict[str, Any]]  # every successful model call: tier, tokens, cost
    requests: int

    def figures(self) -> dict[str, float]:
        return {m: v for m in HEADLINE if (v := metric_value(self.summary, m)) is not None} | {
            "cost.mean_usd": metric_value(self.summary, "cost.mean_usd") or 0.0
        }


async def evaluate(
    services: Services, release: str | None, library: Library, concurrency: int
) -> Evaluation:
    """Run `library` through `release` (None: the configuration file's release)."""
    from adapters.db.evaluation import corpus_chunks
    from core.acl import load_policy
    from core.evaluation.leaks import LeakDetector
    from core.evaluation.report import summarize
    from core.evaluation.runner import EvalRunner

    parts = services.releases
    calls = _Calls()
    answers, retriever = await parts.resolve(
        release, traces=FanOutSink(parts.traces, calls), tickets=DryRunTickets(), cache=False
    )
    reference = load_policy(library.acl) if library.acl else None
    runner = EvalRunner(
        answers,
        retriever,
        services.directory,
        LeakDetector(await corpus_chunks(services.engine), reference),
        concurrency=concurrency,
    )
    results = await runner.run(library.cases)
    summary = summarize(library, results, answers.config.release)
    return Evaluation(answers.config.release, summary, calls.calls, calls.requests)


def verdict(library: Library, candidate: Evaluation, active: Evaluation | None) -> dict[str, Any]:
    """Does the candidate pass: no leak, and no metric worse than the active release's by
    more than the library's tolerance for it."""
    deltas = compare(candidate.summary, active.summary, library.tolerance) if active else []
    found = [d.describe() for d in regressions(deltas)]
    leaks = leaked(candidate.summary)
    problems = ([f"{leaks} case(s) leaked documents"] if leaks else []) + found
    return {
        "library": library.name,
        "library_file": str(library.path),
        "cases": len(library.cases),
        "candidate": {"release": candidate.release, "figures": candidate.figures()},
        "active": {"release": active.release, "figures": active.figures()} if active else None,
        "leaks": leaks,
        "regressions": found,
        "passed": not problems,
        "problem": problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        if problems
        else None,
    }


async def gate(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    """The activation gate (an operation the CLI may hand to the running service): the
    library through the active release and through the candidate, then the verdict."""
    library = load_library(Path(params["library"]))
    concurrency = int(params.get("concurrency") or services.settings.releases.gate_concurrency)
    active = await evaluate(services, params.get("active"), library, concurrency)
    candidate = await evaluate(services, params["candidate"], library, concurrency)
    return verdict(library, candidate, active)
