"""The aiohttp application: health, readiness, and (later) the platform endpoints."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from bot.wiring import Services

SERVICES = web.AppKey("services", Services)


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process is up and serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and the vector index is reachable."""
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
    ready = checks["database"] == "ok" and checks["index"] == "ok"
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


def create_app(services: Services) -> web.Application:
    app = web.Application()
    app[SERVICES] = services
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def _close(app: web.Application) -> None:
        await app[SERVICES].close()

    app.on_cleanup.append(_close)
    return app
