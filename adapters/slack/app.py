"""Slack transport: slack-bolt's AsyncApp behind the service's own aiohttp route.

The route verifies the signature first (nothing is processed before), rejects malformed
bodies and acks an event at once; in the background it claims the event id in the database
(a retry, or the same event on another replica, stops there) and hands the event to Bolt.
The claim is a lease (core/conversation/leases.py) renewed while the listener works and
completed when it is done; if this replica dies first, another one takes the event over
from the stored payload. Interactivity payloads go to Bolt directly, whose listeners ack
first.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.bot import IncomingMessage, SlackBot
from adapters.slack.oauth import Installations
from core.conversation.leases import EventLeases, Lease, current_lease, handling

log = structlog.get_logger()
_ACTIONS = re.compile(r"^answerdesk_")
EVENT_CLAIM = "slack:event:"  # the claim key's prefix: the sweeper re-dispatches these


def _settles(listener: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """An event listener that completes the event's claim when it is done (Bolt runs it
    after the ack, so the dispatch returns first); a failure leaves the claim to expire and
    be retried."""

    @functools.wraps(listener)
    async def run(*args: Any, **kwargs: Any) -> None:
        lease = current_lease()
        try:
            await listener(*args, **kwargs)
        except BaseException:
            if lease is not None:
                lease.abandon()
            raise
        if lease is not None:
            await lease.complete()

    return run


def bolt_app(
    bot: SlackBot,
    signing_secret: str | None,
    client: AsyncWebClient,
    *,
    installations: Installations | None = None,
    logger: logging.Logger | None = None,
) -> AsyncApp:
    """One workspace when ``client`` has the bot token; with ``installations``, every
    workspace and org that installed the app, each event answered with its own token
    (Bolt's ``context.client``, which the listeners hand to the bot)."""
    multi: dict[str, Any] = {}
    if installations is not None:
        multi = {"oauth_settings": installations.settings, "authorize": installations.authorize}
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        process_before_response=False,  # ack first; answering happens after the response
        logger=logger,
        **multi,
    )

    @app.event("app_mention")
    @_settles
    async def on_mention(event: dict, body: dict, client: AsyncWebClient) -> None:
        message = _incoming(event, body)
        if message is not None:
            await bot.answer_message(client, message)

    @app.event("message")
    @_settles
    async def on_message(event: dict, body: dict, context: Any, client: AsyncWebClient) -> None:
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, deletions, joins, bot messages (ours included)
        message = _incoming(event, body)
        if message is None:
            return
        if event.get("channel_type") == "im":
            await bot.answer_message(client, message)
            return
        bot_user = context.get("bot_user_id")
        if bot_user and f"<@{bot_user}" in message.text:
            return  # the message copy of an @mention: app_mention answers it
        if await bot.is_follow_up(message):
            await bot.answer_message(client, message)

    @app.event("assistant_thread_started")
    @_settles
    async def on_assistant_thread(event: dict, client: AsyncWebClient) -> None:
        thread = event.get("assistant_thread")
        await bot.assistant_thread_started(client, thread if isinstance(thread, dict) else {})

    @app.action(_ACTIONS)
    async def on_action(ack: Any, body: dict, action: dict, client: AsyncWebClient) -> None:
        await ack()
        user, team, enterprise = (_object(body, key) for key in ("user", "team", "enterprise"))
        user_id, value = user.get("id"), action.get("value", "")
        team_id = team.get("id") or user.get("team_id") or ""
        enterprise_id = enterprise.get("id")
        if not _strings(user_id, value, team_id) or not _strings(enterprise_id, optional=True):
            log.warning("slack action without a user, team or value ignored")
            return
        await bot.on_action(client, action["action_id"], value, user_id, team_id, enterprise_id)

    if installations is not None:

        @app.event("app_uninstalled")
        @_settles
        async def on_uninstalled(context: Any) -> None:
            await installations.forget(context, bot_only=False)

        @app.event("tokens_revoked")
        @_settles
        async def on_tokens_revoked(event: dict, context: Any) -> None:
            if _object(event, "tokens").get("bot"):  # user tokens: this bot has none
                await installations.forget(context, bot_only=True)

    @app.event(re.compile(".*"))
    @_settles
    async def ignore_other_events() -> None:
        return None  # acknowledged and ignored

    return app


def _incoming(event: dict, body: dict) -> IncomingMessage | None:
    """The message, or None (logged) when a field Slack always sends is missing or not
    text: nothing downstream has to guess."""
    team_id = body.get("team_id") or event.get("team") or ""
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    text, thread_ts, enterprise_id = (
        event.get("text", ""),
        event.get("thread_ts"),
        body.get("enterprise_id"),
    )
    if not (_strings(team_id, text) and user and channel and ts and _strings(user, channel, ts)):
        log.warning("slack message without user, channel or ts ignored", type=event.get("type"))
        return None
    if not _strings(thread_ts, enterprise_id, optional=True):
        log.warning("slack message with a malformed thread or enterprise ignored")
        return None
    return IncomingMessage(
        team_id=team_id,
        user_id=user,
        channel_id=channel,
        text=text,
        ts=ts,
        thread_ts=thread_ts,
        enterprise_id=enterprise_id,
    )


def _object(data: dict, key: str) -> dict:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _strings(*values: Any, optional: bool = False) -> bool:
    return all(isinstance(v, str) or (optional and v is None) for v in values)


class SlackEndpoint:
    """Events and interactivity over HTTP. The event path (claim, then Bolt) is shared with
    Socket Mode through :meth:`accept_event`, and with the sweeper's re-dispatch of events
    whose claim another replica let expire (:meth:`redispatch`)."""

    def __init__(
        self,
        app: AsyncApp,
        signing_secret: str | None,
        leases: EventLeases,
        on_duplicate: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self._secret = signing_secret.encode() if signing_secret else None
        self._leases = leases
        self._on_duplicate = on_duplicate
        self._tasks: set[asyncio.Task[None]] = set()

    def accept_event(
        self, event_id: str, body: str | dict, headers: dict[str, str], *, mode: str = "http"
    ) -> None:
        """Process an acknowledged event in the background: the claim (a database insert)
        decides, on any replica and for either transport, that it is processed once."""
        task = asyncio.create_task(self._claim_and_dispatch(event_id, body, headers, mode))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _claim_and_dispatch(
        self, event_id: str, body: str | dict, headers: dict[str, str], mode: str
    ) -> None:
        try:
            # The payload, so another replica can answer it if this one dies: verified
            # already, it is dispatched again as Socket Mode payloads are (no signature).
            event = json.loads(body) if isinstance(body, str) else body
            lease = await self._leases.take(f"{EVENT_CLAIM}{event_id}", {"event": event})
            if lease is None:
                if self._on_duplicate is not None:
                    self._on_duplicate()
                log.info(
                    "slack retry ignored",
                    event_id=event_id,
                    retry=headers.get("X-Slack-Retry-Num"),
                )
                return
        except Exception:
            log.exception("slack event not claimed", event_id=event_id)
            return
        await self._dispatch(lease, AsyncBoltRequest(body=body, headers=headers, mode=mode))

    async def redispatch(self, lease: Lease) -> None:
        """An event whose claim ran out on another replica (the sweeper took it over)."""
        event = (lease.payload or {}).get("event")
        if not isinstance(event, dict):
            await lease.complete()  # nothing to answer with
            return
        await self._dispatch(lease, AsyncBoltRequest(body=event, mode="socket_mode"))

    async def _dispatch(self, lease: Lease, request: AsyncBoltRequest) -> None:
        try:
            with handling(lease):
                response = await self.app.async_dispatch(request)
            if response.status != 200:  # no listener took it: nothing to answer
                await lease.complete()
        except Exception:
            log.exception("slack event failed", key=lease.key)
            lease.abandon()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if self._secret is None or not signature_valid(self._secret, body, timestamp, signature):
            return web.json_response({"error": "invalid or stale signature"}, status=401)
        try:
            data = _parse(body, request.content_type)
        except (ValueError, KeyError):  # UnicodeDecodeError is a ValueError
            return web.json_response({"error": "malformed body"}, status=400)
        if data.get("type") == "url_verification":
            return web.json_response({"challenge": data.get("challenge", "")})
        if data.get("type") == "event_callback":
            event_id = data.get("event_id")
            if not event_id or not isinstance(event_id, str):
                return web.json_response({"error": "event without event_id"}, status=400)
            inner = data.get("event")
            if not isinstance(inner, dict) or not isinstance(inner.get("type"), str):
                return web.json_response({"error": "malformed event"}, status=400)
            if not _readable(body, request):
                return web.json_response({"error": "malformed event"}, status=400)
            self.accept_event(event_id, body.decode(), dict(request.headers))
            return web.json_response({"ok": True})  # acked before any database or model work
        if not _interaction_readable(data):
            return web.json_response({"error": "malformed interaction"}, status=400)
        try:
            bolt_request = AsyncBoltRequest(body=body.decode(), headers=dict(request.headers))
        except Exception:  # Bolt reads team, user, channel… out of the body: a shape it chokes on
            return web.json_response({"error": "malformed body"}, status=400)
        response = await self.app.async_dispatch(bolt_request)
        if response.status == 404:
            return web.json_response({"ok": True, "ignored": True})
        return await to_aiohttp_response(response)


def _readable(body: bytes, request: web.Request) -> bool:
    """Bolt can build its request (context: team, enterprise, user…) from this event."""
    try:
        AsyncBoltRequest(body=body.decode(), headers=dict(request.headers))
    except Exception:
        return False
    return True


def _interaction_readable(data: dict) -> bool:
    """A payload Bolt can dispatch: typed, and button clicks (the only interactivity this app
    listens to) with a user and a list of actions, each with an id: Bolt's matchers index
    into them."""
    if not isinstance(data.get("type"), str):
        return False  # Slack names every payload's type
    if "event" in data and not isinstance(data["event"], dict):
        return False  # Bolt's middleware reads body["event"] as an object
    if data.get("type") != "block_actions":
        return True
    actions, user = data.get("actions"), data.get("user")
    return (
        isinstance(user, dict)
        and isinstance(actions, list)
        and bool(actions)
        and all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)
    )


_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
MAX_SKEW_S = 5 * 60


def signature_valid(
    secret: bytes, body: bytes, timestamp: str, signature: str, now: float | None = None
) -> bool:
    """Slack's request signature (``v0=`` HMAC-SHA256 of ``v0:<timestamp>:<raw body>``),
    checked over the raw bytes: any body, header or clock value is an answer, never an
    exception (slack_sdk's verifier decodes the body and compares str, and raises on
    non-UTF-8 bodies and non-ASCII signatures)."""
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW_S:
        return False
    digest = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return hmac.compare_digest(f"v0={digest.hexdigest()}".encode(), signature.encode())


def _parse(body: bytes, content_type: str) -> dict:
    text = body.decode("utf-8")
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(text, strict_parsing=True)
        data = json.loads(form["payload"][0])
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data
