"""Every refusal the service answers is JSON: aiohttp's own 4xx (no such route, method not
allowed, a body aiohttp cannot read) arrive as text; this turns them into
``{"error": …}``. The console's HTML pages and redirects pass untouched."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPClientError as exc:
        if exc.content_type != "text/plain":
            raise
        return web.json_response(
            {"error": exc.reason.lower()}, status=exc.status, headers=_kept(exc)
        )


def _kept(exc: web.HTTPClientError) -> dict[str, str]:
    """Headers a client needs from the refusal (405's Allow)."""
    return {name: exc.headers[name] for name in ("Allow",) if name in exc.headers}
