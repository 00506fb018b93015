"""The aiohttp application: health, readiness, metrics, the admin console, the platforms'
endpoints."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from aiohttp import web
from sqlalchemy import text

from adapters.observability.metrics import LiveReadings
from adapters.tickets.hooks import TicketHooks
from adapters.tickets.signing import same
from bot.body_limits import body_limit_middleware
from bot.console import CONSOLE, setup_console
from bot.http_errors import json_errors
from bot.operations import OPERATIONS, STREAMING
from bot.wiring import Services, SlackParts, build_slack, build_teams
from core.acl import AclFileError
from core.conversation.leases import Sweeper
from core.conversation.queue import BusyReason, QueueState
from core.directory import DirectoryFileError
from core.handoff.worker import DeliveryWorker

if TYPE_CHECKING:
    from adapters.slack.socket_mode import SocketModeTransport

SERVICES = web.AppKey("services", Services)
ADMIN_TOKEN = web.AppKey("admin_token", str)
SLACK_SOCKET: web.AppKey[SocketModeTransport] = web.AppKey("slack_socket")
WORKER = web.AppKey("worker", str)  # "2 of 4" under `serve --workers 4`
log = structlog.get_logger()


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process is up and serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers, the vector index is reachable, and the replica is
    not saturated (a question arriving now would be set aside as busy: a load balancer
    should send it to another replica until this one catches up)."""
    services = request.app[SERVICES]
    checks: dict[str, str] = {}
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; report its kind, not secrets
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        count = await asyncio.to_thread(services.index.count)
        checks["index"] = "ok"
        checks["chunks_indexed"] = str(count)
    except Exception as exc:
        checks["index"] = f"error: {type(exc).__name__}"
    socket = request.app.get(SLACK_SOCKET)
    if socket is not None:  # reported, not required: the service works without Slack
        checks["slack_socket"] = "connected" if socket.connected else "connecting"
    worker = request.app.get(WORKER)
    if worker is not None:  # reported, not gating: which of the processes answered
        checks["worker"] = f"{worker} (pid {os.getpid()})"
    queue = services.answer_queue.state()
    busy = queue.saturated
    checks["answer_queue"] = "ok" if busy is None else f"saturated: {_saturation(queue)}"
    ready = checks["database"] == "ok" and checks["index"] == "ok"
    status = "ready" if ready and busy is None else "busy" if ready else "not ready"
    body: dict[str, Any] = {"status": status, "checks": checks}
    if busy is not None:
        body["answer_queue"] = {
            "reason": busy.value,
            "waiting": queue.waiting,
            "max_waiting": queue.max_waiting,
            "in_flight": queue.in_flight,
            "estimated_wait_s": round(queue.estimated_wait_s, 1),
            "max_wait_s": queue.max_wait_s,
        }
    return web.json_response(body, status=200 if status == "ready" else 503)


def _saturation(queue: QueueState) -> str:
    if queue.saturated is BusyReason.FULL:
        return f"{queue.waiting} questions waiting (answer_queue.max_waiting {queue.max_waiting})"
    return (
        f"a new question would wait ~{queue.estimated_wait_s:.0f} s "
        f"(answer_queue.max_wait_s {queue.max_wait_s:g})"
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition. With a metrics token or a console login configured, a scrape
    needs the token (`Authorization: Bearer`) or a console session."""
    services = request.app[SERVICES]
    if services.metrics is None:
        return web.json_response({"error": "metrics are disabled (metrics.enabled)"}, status=404)
    token = services.settings.metrics.token
    console = request.app.get(CONSOLE)
    if token is not None or (console is not None and console.login_configured):
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        allowed = token is not None and same(given, token.get_secret_value())
        if not allowed and (console is None or await console.session_of(request) is None):
            return web.json_response(
                {"error": "unauthorized: send the metrics token or log in to the console"},
                status=401,
            )
    readings = LiveReadings(
        breakers=services.answers.breaker_states(),
        trace_buffer=services.traces.pending,
        traces_spilled=services.traces.spilled,
        answer_queue=services.answer_queue.state(),
    )
    try:
        readings.tickets = await services.tickets.by_provider()
        readings.ticket_messages = (await services.tickets.counts())["messages"]
    except Exception as exc:  # the database is down: the rest of the metrics still matter
        log.warning("ticket counts unavailable for metrics", error=type(exc).__name__)
    return web.Response(
        body=services.metrics.render(readings),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def admin_run(request: web.Request) -> web.Response:
    """Work handed over by the CLI (or an operator) that must run in this process."""
    token = request.app.get(ADMIN_TOKEN)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token or not same(given, token):
        return web.json_response({"error": "unauthorized"}, status=401)
    try:
        body = await request.json()
        operation = OPERATIONS[body["op"]]
        params = body["params"]
        if not isinstance(params, dict):
            raise TypeError("params must be an object")
        streaming = STREAMING[body["op"]] if body.get("stream") else None
    except (ValueError, KeyError, TypeError) as exc:
        return web.json_response({"error": f"bad request: {exc}"}, status=400)
    if streaming is not None:
        return await _run_streaming(request, body["op"], streaming, params)
    outcome, status = await _run(body["op"], operation(request.app[SERVICES], params))
    return web.json_response(outcome, status=status)


async def _run(op: str, work: Awaitable[Any]) -> tuple[dict[str, Any], int]:
    """An operation's result, or its error and HTTP status (400: bad input)."""
    try:
        return {"result": await work}, 200
    except (AclFileError, DirectoryFileError, ValueError, KeyError) as exc:
        return {"error": str(exc)}, 400
    except Exception as exc:
        log.exception("admin operation failed", op=op)
        return {"error": f"{type(exc).__name__} in the service"}, 500


async def _run_streaming(
    request: web.Request, op: str, operation: Any, params: dict[str, Any]
) -> web.StreamResponse:
    """JSON lines: ``{"progress": …}`` while the operation runs, then ``{"result": …}`` or
    ``{"error": …, "status": …}`` (the HTTP status is sent before the outcome is known)."""
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)

    async def emit(event: dict[str, Any]) -> None:
        await response.write((json.dumps({"progress": event}) + "\n").encode())

    outcome, status = await _run(op, operation(request.app[SERVICES], params, emit))
    if status != 200:
        outcome["status"] = status
    await response.write((json.dumps(outcome) + "\n").encode())
    await response.write_eof()
    return response


class _Background(Protocol):
    def start(self) -> None: ...

    async def close(self) -> None: ...


def _alongside(app: web.Application, task: _Background) -> None:
    """`task` runs while the app serves: started on start-up, closed on clean-up."""

    async def start(_app: web.Application) -> None:
        task.start()

    async def close(_app: web.Application) -> None:
        await task.close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)


def create_app(
    services: Services,
    admin_token: str | None = None,
    slack: bool = True,
    worker: str | None = None,
) -> web.Application:
    """The service's routes; `worker` names this process among `serve --workers`."""
    limits = services.settings.server.body_limits
    # Each route's own limit is applied by the middleware; this is only aiohttp's backstop.
    app = web.Application(
        client_max_size=max(limits.model_dump().values()),
        middlewares=[json_errors, body_limit_middleware(limits)],
    )
    app[SERVICES] = services
    if worker is not None:
        app[WORKER] = worker
    if admin_token:
        app[ADMIN_TOKEN] = admin_token
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/run", admin_run)
    if services.settings.admin.enabled:
        setup_console(app, services)
    off = SlackParts(events_reason="Slack is disabled", install_reason="Slack is disabled")
    parts = build_slack(services) if slack else off
    app.on_cleanup.append(lambda _app: parts.close())
    if parts.socket is not None:
        socket = app[SLACK_SOCKET] = parts.socket
        app.on_startup.append(lambda _app: socket.start())
        app.on_cleanup.append(lambda _app: socket.close())

    async def slack_events(request: web.Request) -> web.Response:
        if parts.events is None:
            return web.json_response({"error": parts.events_reason}, status=503)
        return await parts.events.handle(request)

    async def slack_install(request: web.Request) -> web.StreamResponse:
        if parts.install is None:
            return web.json_response({"error": parts.install_reason}, status=404)
        return await parts.install.handle(request)

    hooks = TicketHooks(services.handoff.loop_back, services.handoff.events)
    app.router.add_post("/hooks/tickets/{provider}", hooks.handle)
    _alongside(app, DeliveryWorker(services.handoff.handoffs))  # one per replica
    teams_parts = build_teams(services)
    # Events a dead replica claimed and never answered: taken over here once their lease
    # has run out (one sweeper per replica; the claim lets only one take each).
    handlers = {}
    if parts.endpoint is not None:
        from adapters.slack.app import EVENT_CLAIM

        handlers[EVENT_CLAIM] = parts.endpoint.redispatch
    if teams_parts.endpoint is not None:
        from adapters.teams.endpoint import ACTIVITY_CLAIM

        handlers[ACTIVITY_CLAIM] = teams_parts.endpoint.bot.redispatch
    _alongside(app, Sweeper(services.leases, handlers))

    async def teams_messages(request: web.Request) -> web.Response:
        if teams_parts.endpoint is None:
            return web.json_response({"error": teams_parts.reason}, status=503)
        return await teams_parts.endpoint.handle(request)

    if teams_parts.endpoint is not None:
        app.on_cleanup.append(lambda _app: teams_parts.endpoint.bot.drain())
    app.router.add_post("/api/messages", teams_messages)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/slack/install", slack_install)
    app.router.add_get("/slack/oauth_redirect", slack_install)

    async def _close(app: web.Application) -> None:
        await app[SERVICES].close()

    app.on_cleanup.append(_close)
    return app
