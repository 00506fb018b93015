"""The service's aiohttp application on a real port, for tests that talk to it over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from bot.app import create_app
from bot.settings import Settings
from bot.wiring import Services, build_services
from tests.support.model_server import unused_port


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[str, Services]]:
    """Build the services, serve `create_app` on 127.0.0.1; yields (base URL, services)."""
    services = await build_services(settings)
    runner = web.AppRunner(create_app(services))
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        await runner.cleanup()
