"""Request body size limits, one per route (`server.body_limits`), enforced before any
handler reads or parses a body: a declared length over the limit is refused at once, and a
body sent without a length (chunked) is read only up to the limit. Either way the answer is
413 with a JSON body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.settings import BodyLimitSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_STREAMED = "multipart/form-data"  # read field by field by `request.post()`, under the limit


def limit_for(path: str, limits: BodyLimitSettings) -> tuple[str, int]:
    """(the setting's name, its limit) for a route's path pattern."""
    if path == "/slack/events":
        return "slack", limits.slack
    if path == "/api/messages":
        return "teams", limits.teams
    if path.startswith("/hooks/tickets/"):
        return "ticket_hooks", limits.ticket_hooks
    if path == "/admin/run":
        return "admin_run", limits.admin_run
    if path == "/admin" or path.startswith("/admin/"):
        return "console", limits.console
    return "other", limits.other


def too_large(name: str, limit: int) -> web.Response:
    return web.json_response(
        {
            "error": f"request body too large: at most {limit} bytes here "
            f"(server.body_limits.{name})"
        },
        status=413,
    )


Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def body_limit_middleware(limits: BodyLimitSettings) -> Middleware:
    @web.middleware
    async def enforce(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else request.path
        name, limit = limit_for(pattern, limits)
        if request.content_length is not None and request.content_length > limit:
            return too_large(name, limit)
        if not request.body_exists:
            return await handler(request)
        request = request.clone(client_max_size=limit)
        try:
            if request.content_type != _STREAMED:
                await request.read()  # kept by the request: the handler reads it from there
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return too_large(name, limit)

    return enforce
