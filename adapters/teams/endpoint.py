"""`POST /api/messages`: the Bot Framework's activities, authenticated before anything else.

Order: parse, and check the fields this adapter reads have their schema's types, serviceUrl
included (400); validate the token (401), check the tenant (401), claim the activity in
the database (a redelivery, or the same activity on another replica, stops here with 200),
then run the turn. A turn answers within Teams' reply window: what takes longer goes out
proactively after the HTTP response (see TeamsBot)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from adapters.teams.activities import shape_problem, tenant_of
from adapters.teams.bot import TeamsBot
from adapters.teams.ports import AuthenticationFailed, MalformedActivity, Transport
from adapters.teams.store import teams_key

log = structlog.get_logger()
Claim = Callable[[str], Awaitable[bool]]  # True the first time a key is claimed, any replica


def activity_key(tenant: str, conversation: str, activity_id: str) -> str:
    return f"teams:activity:{teams_key(tenant, conversation, activity_id)}"


class TeamsEndpoint:
    def __init__(
        self,
        transport: Transport,
        bot: TeamsBot,
        claim: Claim,
        allowed_tenants: frozenset[str],
    ) -> None:
        self._transport = transport
        self.bot = bot
        self._claim = claim  # the conversation layer's shared claim
        self._allowed = allowed_tenants

    async def handle(self, request: web.Request) -> web.Response:
        try:
            activity = json.loads(await request.read())
            if not isinstance(activity, dict) or not isinstance(activity.get("type"), str):
                raise ValueError("not an activity")
            problem = shape_problem(activity)
            if problem is not None:
                raise ValueError(problem)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "malformed activity"}, status=400)
        try:
            authenticated = await self._transport.authenticate(
                request.headers.get("Authorization"), activity
            )
        except MalformedActivity:
            return web.json_response({"error": "malformed activity"}, status=400)
        except AuthenticationFailed as exc:
            log.warning("teams request refused", reason=str(exc))
            return web.json_response({"error": "unauthorized"}, status=401)
        tenant = tenant_of(activity)
        if tenant not in self._allowed:
            log.warning("teams request from a tenant not allowed", tenant=tenant or None)
            return web.json_response({"error": "tenant not allowed"}, status=401)
        conversation = str((activity.get("conversation") or {}).get("id") or "")
        activity_id = str(activity.get("id") or "")
        if activity_id and not await self._claim(activity_key(tenant, conversation, activity_id)):
            log.info("teams redelivery ignored", activity_id=activity_id)
            return web.json_response({})
        try:
            reply = await self._transport.run_turn(authenticated, activity, self.bot.on_turn)
        except Exception as exc:
            log.error("teams turn failed", error=type(exc).__name__)
            return web.json_response({"error": "internal error"}, status=500)
        if reply is None:
            return web.json_response({})
        return web.json_response(reply.body, status=reply.status)
