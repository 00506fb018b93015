"""The console's launch page: the last pre-launch checklist run, item by item, and the
releases (active, canary, what a rollback returns to, recent changes with who and why)."""

from __future__ import annotations

from aiohttp import web

from adapters.db.preflight import PreflightStore
from adapters.db.releases import SqlReleaseStore
from bot.console.web import CONSOLE, Session, page
from bot.release_file import release_id, settings_release


@page
async def launch(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    services = console.services
    store = SqlReleaseStore(services.engine)
    state = await store.state()
    return console.render(
        "launch.html",
        session,
        preflight=await PreflightStore(services.engine).last(),
        state=state,
        configured=release_id(settings_release(services.settings)),
        previous=await store.previous(),
        events=await store.events(limit=20),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/launch", launch)
