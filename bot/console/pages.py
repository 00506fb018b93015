"""The console's pages: dashboard, traces, tickets, "Try it" and the audit log."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from adapters.db.outcomes import votes_for
from adapters.db.trace_query import TraceFilter, TraceQuery
from bot.console.charts import waterfall
from bot.console.chat_preview import answer_html
from bot.console.dashboard import dashboard_context
from bot.console.web import CONSOLE, Session, action, page
from bot.durations import parse_duration
from core.answering.types import Asker, Audience, Mode, NoticeCode, Question
from core.handoff.events import NO_THREAD, NotBuiltin, TicketNotFound

PLATFORMS = ("slack", "teams", "console", "cli")
FEEDBACK = ("up", "down", "none")
TRACE_RANGES = ("1h", "24h", "7d", "30d", "90d")


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


@page
async def dashboard(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    chosen = request.query.get("range", "24h")
    try:
        context = await dashboard_context(console.services, chosen, time.time())
    except ValueError as exc:
        return _bad(str(exc))
    return console.render("dashboard.html", session, **context)


def _tiers(request: web.Request) -> list[str]:
    configured = [t.name for t in request.app[CONSOLE].services.settings.models.tiers]
    return [*configured, "extractive", "sources"]


@page
async def traces(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    q = request.query
    choices = {
        "platform": PLATFORMS,
        "mode": tuple(str(m) for m in Mode),
        "feedback": FEEDBACK,
        "tier": tuple(_tiers(request)),
        "range": TRACE_RANGES,
    }
    for name, allowed in choices.items():
        if q.get(name) and q[name] not in allowed:
            return _bad(f"{name} must be one of {', '.join(allowed)}")
    chosen = q.get("range") or "24h"
    try:
        before = datetime.fromisoformat(q["before"]) if q.get("before") else None
    except ValueError:
        return _bad("before must be an ISO time")
    notice = (q.get("notice") or "").strip()
    if notice and not notice.replace("_", "").isalnum():
        return _bad("notice must be a notice code such as fallback_tier")
    where = TraceFilter(
        since=datetime.now(UTC) - timedelta(seconds=parse_duration(chosen)),
        platform=q.get("platform") or None,
        mode=q.get("mode") or None,
        user=(q.get("user") or "").strip() or None,
        notice=notice or None,
        feedback=q.get("feedback") or None,
        tier=q.get("tier") or None,
        before=before,
    )
    rows = await TraceQuery(console.services.engine).search(where, limit=50)
    params = {k: v for k, v in q.items() if k != "before" and v}
    older = None
    if len(rows) == 50:
        older = {**params, "before": rows[-1]["created_at"]}
    return console.render(
        "traces.html",
        session,
        rows=rows,
        query=params,
        older=older,
        choices=choices,
        chosen_range=chosen,
        notices=[str(c) for c in NoticeCode] + ["internal_error", "ticket_failed"],
    )


@page
async def trace_detail(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    services = console.services
    request_id = request.match_info["request_id"]
    trace = await services.traces.get(request_id)
    if trace is None:
        return console.render("missing.html", session, status=404, what=f"trace {request_id}")
    await console.audit(request, session.admin, "trace_view", request_id)
    stages = [
        (name, float(s.get("start_ms") or 0), float(s.get("ms") or 0))
        for name, s in (trace.get("stages") or {}).items()
    ]
    stages.sort(key=lambda s: s[1])
    return console.render(
        "trace.html",
        session,
        trace=trace,
        stages=trace.get("stages") or {},
        timeline=waterfall(stages, float(trace.get("latency_ms") or 0)),
        votes=await votes_for(services.engine, request_id),
        ticket=await services.tickets.for_request(request_id),
        created=datetime.fromtimestamp(float(trace.get("created_at") or 0), UTC).isoformat(
            timespec="seconds"
        ),
    )


@page
async def tickets(request: web.Request, session: Session) -> web.StreamResponse:
    return await _tickets_page(request, session)


async def _tickets_page(
    request: web.Request, session: Session, status: int = 200, **message: Any
) -> web.StreamResponse:
    console = request.app[CONSOLE]
    which = request.query.get("status", "open")
    if which not in ("open", "closed", "all"):
        return _bad("status must be open, closed or all")
    rows = await console.services.tickets.list(None if which == "all" else which, limit=200)
    return console.render(
        "tickets.html",
        session,
        status=status,
        rows=rows,
        which=which,
        done=request.query.get("done"),
        error=message.get("error"),
    )


@action
async def resolve_ticket(request: web.Request, session: Session) -> web.StreamResponse:
    """Resolve a built-in ticket; a note is first posted to the asker as the agent's last
    reply (the ticket system of record for other providers is that system)."""
    ticket_id = request.match_info["ticket_id"]
    note = str((await request.post()).get("note", "")).strip()[:2000]
    desk = request.app[CONSOLE].services.handoff.desk
    try:
        if note:
            await desk.reply(ticket_id, note, session.admin)
        result = await desk.resolve(ticket_id, session.admin)
    except (TicketNotFound, NotBuiltin) as exc:
        return await _tickets_page(request, session, status=_status_of(exc), error=str(exc))
    if result["outcome"] == "already resolved":
        return await _tickets_page(
            request, session, status=409, error=f"{ticket_id} is not an open ticket."
        )
    await request.app[CONSOLE].audit(request, session.admin, "ticket_resolve", ticket_id, note=note)
    raise web.HTTPFound(f"/admin/tickets?done=resolved+{ticket_id}")


@action
async def reply_ticket(request: web.Request, session: Session) -> web.StreamResponse:
    """An agent's reply on a built-in ticket, posted into the asker's conversation (at once
    when this replica reaches the platform, else by the delivery worker)."""
    ticket_id = request.match_info["ticket_id"]
    message = str((await request.post()).get("message", "")).strip()
    if not message or len(message) > 3000:
        return await _tickets_page(
            request, session, status=400, error="A reply needs 1 to 3000 characters."
        )
    desk = request.app[CONSOLE].services.handoff.desk
    try:
        result = await desk.reply(ticket_id, message, session.admin)
    except (TicketNotFound, NotBuiltin) as exc:
        return await _tickets_page(request, session, status=_status_of(exc), error=str(exc))
    if result["outcome"] == NO_THREAD:
        error = f"{ticket_id} was not asked in a chat: there is no conversation to reply in."
        return await _tickets_page(request, session, status=409, error=error)
    await request.app[CONSOLE].audit(
        request, session.admin, "ticket_reply", ticket_id, chars=len(message)
    )
    raise web.HTTPFound(f"/admin/tickets?done=replied+{ticket_id}")


def _status_of(exc: Exception) -> int:
    return 404 if isinstance(exc, TicketNotFound) else 409


@page
async def try_it(request: web.Request, session: Session) -> web.StreamResponse:
    return await _try_page(request, session)


async def _try_page(
    request: web.Request, session: Session, status: int = 200, **result: Any
) -> web.StreamResponse:
    console = request.app[CONSOLE]
    people = await console.services.directory.people()
    return console.render(
        "try.html",
        session,
        status=status,
        people=people,
        form=result.get("form", {"email": "", "audience": "dm", "question": ""}),
        answer=result.get("answer"),
        preview=result.get("preview"),
        error=result.get("error"),
    )


@action
async def ask(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("email", "audience", "question")}
    try:
        audience = Audience.parse(values["audience"] or "dm")
    except ValueError as exc:
        return await _try_page(request, session, status=400, form=values, error=str(exc))
    if "@" not in values["email"] or not values["question"]:
        return await _try_page(
            request,
            session,
            status=400,
            form=values,
            error="Choose whom to ask as and write a question.",
        )
    question = Question(
        text=values["question"],
        asker=Asker(email=values["email"].lower(), platform="console"),
        audience=audience,
        platform="console",
    )
    answer = await console.services.answers.answer(question)
    await console.audit(
        request,
        session.admin,
        "try_it",
        answer.request_id,
        as_user=question.asker.email,
        audience=str(audience),
    )
    return await _try_page(
        request, session, form=values, answer=answer, preview=answer_html(answer)
    )


@page
async def audit_log(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    entries = await console.store.audit_log(limit=300)
    return console.render("audit.html", session, entries=entries)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin", dashboard)
    app.router.add_get("/admin/traces", traces)
    app.router.add_get("/admin/traces/{request_id}", trace_detail)
    app.router.add_get("/admin/tickets", tickets)
    app.router.add_post("/admin/tickets/{ticket_id}/resolve", resolve_ticket)
    app.router.add_post("/admin/tickets/{ticket_id}/reply", reply_ticket)
    app.router.add_get("/admin/try", try_it)
    app.router.add_post("/admin/try", ask)
    app.router.add_get("/admin/audit", audit_log)
