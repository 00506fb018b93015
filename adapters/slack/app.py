"""Slack transport: slack-bolt's AsyncApp behind the service's own aiohttp route.

The route verifies the signature first (nothing is processed before), rejects malformed
bodies and acks an event at once; in the background it claims the event id in the database
(a retry, or the same event on another replica, stops there) and hands the event to Bolt.
Interactivity payloads go to Bolt directly, whose listeners ack first.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.bot import IncomingMessage, SlackBot

log = structlog.get_logger()
_ACTIONS = re.compile(r"^answerdesk_")


def web_client(token: str, base_url: str) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def bolt_app(bot: SlackBot, signing_secret: str) -> AsyncApp:
    app = AsyncApp(
        client=bot.client,
        signing_secret=signing_secret,
        process_before_response=False,  # ack first; answering happens after the response
    )

    @app.event("app_mention")
    async def on_mention(event: dict, body: dict) -> None:
        await bot.answer_message(_incoming(event, body))

    @app.event("message")
    async def on_message(event: dict, body: dict, context: Any) -> None:
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, deletions, joins, bot messages (ours included)
        if event.get("channel_type") == "im":
            await bot.answer_message(_incoming(event, body))
            return
        bot_user = context.get("bot_user_id")
        if bot_user and f"<@{bot_user}" in event.get("text", ""):
            return  # the message copy of an @mention: app_mention answers it
        if await bot.is_follow_up(event["channel"], event.get("thread_ts")):
            await bot.answer_message(_incoming(event, body))

    @app.action(_ACTIONS)
    async def on_action(ack: Any, body: dict, action: dict) -> None:
        await ack()
        await bot.on_action(
            action["action_id"],
            action.get("value", ""),
            body["user"]["id"],
            (body.get("team") or {}).get("id") or body["user"].get("team_id", ""),
        )

    @app.event(re.compile(".*"))
    async def ignore_other_events() -> None:
        return None  # acknowledged and ignored

    return app


def _incoming(event: dict, body: dict) -> IncomingMessage:
    return IncomingMessage(
        team_id=body.get("team_id") or event.get("team", ""),
        user_id=event["user"],
        channel_id=event["channel"],
        text=event.get("text", ""),
        ts=event["ts"],
        thread_ts=event.get("thread_ts"),
        enterprise_id=body.get("enterprise_id"),
    )


class SlackEndpoint:
    def __init__(self, app: AsyncApp, signing_secret: str, claim_event: Any) -> None:
        self._app = app
        self._verifier = SignatureVerifier(signing_secret)
        self._claim_event = claim_event
        self._tasks: set[asyncio.Task[None]] = set()

    async def _claim_and_dispatch(
        self, event_id: str, body: bytes, headers: dict[str, str]
    ) -> None:
        try:
            if not await self._claim_event(event_id):
                log.info(
                    "slack retry ignored",
                    event_id=event_id,
                    retry=headers.get("X-Slack-Retry-Num"),
                )
                return
            await self._app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
        except Exception:
            log.exception("slack event failed", event_id=event_id)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp.isdigit() or not self._verifier.is_valid(body, timestamp, signature):
            return web.json_response({"error": "invalid or stale signature"}, status=401)
        try:
            data = _parse(body, request.content_type)
        except (ValueError, KeyError):
            return web.json_response({"error": "malformed body"}, status=400)
        if data.get("type") == "url_verification":
            return web.json_response({"challenge": data.get("challenge", "")})
        if data.get("type") == "event_callback":
            event_id = data.get("event_id")
            if not event_id:
                return web.json_response({"error": "event without event_id"}, status=400)
            # Ack now; claim and process in the background. The claim (a database insert)
            # still decides, on any replica, that the event is processed once.
            task = asyncio.create_task(
                self._claim_and_dispatch(event_id, body, dict(request.headers))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return web.json_response({"ok": True})
        response = await self._app.async_dispatch(
            AsyncBoltRequest(body=body.decode(), headers=dict(request.headers))
        )
        if response.status == 404:
            return web.json_response({"ok": True, "ignored": True})
        return await to_aiohttp_response(response)


def _parse(body: bytes, content_type: str) -> dict:
    text = body.decode("utf-8")
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(text, strict_parsing=True)
        return json.loads(form["payload"][0])
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data
