"""The console's "Evaluations" page: every `answerdesk eval` run kept in the database, with
its headline figures, regressions and worst cases (each linked to its trace)."""

from __future__ import annotations

from aiohttp import web

from adapters.db.evaluation import recent_runs, run_by_id
from bot.console.web import CONSOLE, Session, page
from core.evaluation.metrics import HEADLINE, metric_value
from core.evaluation.report import TAG_COLUMNS

LISTED = (
    "retrieval.recall@5",
    "retrieval.mrr",
    "generation.citation_validity",
    "generation.must_include_rate",
    "generation.mode_accuracy",
    "generation.permission_leaks",
    "latency.p95_ms",
)


def _figure(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.3g}"


@page
async def evaluations(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    runs = await recent_runs(console.services.engine)
    rows = [(run, [_figure(metric_value(run.summary, m)) for m in LISTED]) for run in runs]
    return console.render("evaluations.html", session, rows=rows, columns=LISTED)


@page
async def evaluation(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    run_id = request.match_info["run_id"]
    run = await run_by_id(console.services.engine, run_id)
    if run is None:
        return console.render("missing.html", session, status=404, what=f"evaluation {run_id}")
    overall = [
        (m, _figure(metric_value(run.summary, m)))
        for m in HEADLINE
        if metric_value(run.summary, m) is not None
    ]
    tags = run.summary.get("by_tag") or {}
    shown = [m for m in TAG_COLUMNS if any(metric_value(t, m) is not None for t in tags.values())]
    by_tag = [
        (tag, figures.get("cases", 0), [_figure(metric_value(figures, m)) for m in shown])
        for tag, figures in tags.items()
    ]
    return console.render(
        "evaluation.html",
        session,
        run=run,
        overall=overall,
        tag_columns=[m.split(".", 1)[1] for m in shown],
        by_tag=by_tag,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/evaluations", evaluations)
    app.router.add_get("/admin/evaluations/{run_id}", evaluation)
