"""The admin console at /admin: server-rendered pages (jinja2), no script, nothing fetched
from another origin. See README "Operations"."""

from __future__ import annotations

from aiohttp import web

from bot.console import evaluations, launch, pages
from bot.console.web import CONSOLE, Console, login, login_page, logout, static_file
from bot.wiring import Services


def setup_console(app: web.Application, services: Services) -> Console:
    console = app[CONSOLE] = Console(services)

    async def start(_app: web.Application) -> None:
        await console.start()

    app.on_startup.append(start)
    app.router.add_get("/admin/login", login_page)
    app.router.add_post("/admin/login", login)
    app.router.add_post("/admin/logout", logout)
    app.router.add_get("/admin/static/{name}", static_file)
    pages.add_routes(app)
    launch.add_routes(app)
    evaluations.add_routes(app)
    return console


__all__ = ["CONSOLE", "Console", "setup_console"]
