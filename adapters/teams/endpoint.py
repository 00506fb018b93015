"""`POST /api/messages`: the Bot Framework's activities, authenticated before anything else.

Order: parse, and check the fields this adapter reads have their schema's types, serviceUrl
included (400); validate the token (401), check the tenant (401), claim the activity in
the database (a redelivery, or the same activity on another replica, stops here with 200),
then run the turn. A turn answers within Teams' reply window: what takes longer goes out
proactively after the HTTP response (see TeamsBot). The claim is leased like every event's
(core/conversation/leases.py): renewed while the answer is written, completed when it is
done; a redelivery after the holder died and its lease ran out is answered."""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog
from aiohttp import web

from adapters.teams.activities import shape_problem, tenant_of
from adapters.teams.bot import TeamsBot
from adapters.teams.ports import AuthenticationFailed, MalformedActivity, Transport
from adapters.teams.store import teams_key
from core.conversation.leases import EventLeases, handling

log = structlog.get_logger()


ACTIVITY_CLAIM = "teams:activity:"  # the claim key's prefix: the sweeper re-dispatches these


def activity_key(tenant: str, conversation: str, activity_id: str) -> str:
    return f"{ACTIVITY_CLAIM}{teams_key(tenant, conversation, activity_id)}"


class TeamsEndpoint:
    def __init__(
        self,
        transport: Transport,
        bot: TeamsBot,
        leases: EventLeases,
        allowed_tenants: frozenset[str],
        on_duplicate: Callable[[], None] | None = None,
    ) -> None:
        self._transport = transport
        self.bot = bot
        self._leases = leases  # the conversation layer's shared, leased claims
        self._allowed = allowed_tenants
        self._on_duplicate = on_duplicate

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
        lease = None
        if activity_id:
            # The activity, so another replica can answer it if this one dies mid-answer.
            lease = await self._leases.take(
                activity_key(tenant, conversation, activity_id), {"activity": activity}
            )
            if lease is None:
                if self._on_duplicate is not None:
                    self._on_duplicate()
                log.info("teams redelivery ignored", activity_id=activity_id)
                return web.json_response({})
        try:
            with handling(lease):
                reply = await self._transport.run_turn(authenticated, activity, self.bot.on_turn)
        except Exception as exc:
            log.error("teams turn failed", error=type(exc).__name__)
            if lease is not None:
                lease.abandon()  # a redelivery after the lease may try again
            return web.json_response({"error": "internal error"}, status=500)
        if lease is not None and not lease.held:
            await lease.complete()  # else the answer going on proactively completes it
        if reply is None:
            return web.json_response({})
        return web.json_response(reply.body, status=reply.status)
