"""Slack's surface: the conversation layer's messages as Block Kit, posted with a Web API
client (the token of the workspace the conversation belongs to), paced and retried.

Every call uses the client the surface is bound to: in a chat turn, Bolt's
``context.client`` (the event's workspace or org token); outside one, a client made from
the bot token or the conversation's installation (:class:`SlackSurfaces`)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.client import web_client
from adapters.slack.render import render_message
from adapters.slack.stream import SlackReply, Streaming
from core.conversation.messages import Message, Working, request_id_of
from core.conversation.ports import Reply, Unreachable
from core.conversation.reply import WorkingMessage
from core.conversation.types import ConversationRef, Turn

log = structlog.get_logger()


class SlackPoster:
    """Posting shared by every surface of a process: paced per channel (Slack allows about
    one message per second per channel) and retried with backoff on top of the client's
    own retries; a failure is logged with the request id, never dropped silently."""

    def __init__(self, interval_s: float = 1.0, attempts: int = 4) -> None:
        self._interval_s = interval_s
        self._attempts = attempts
        self._pacing: dict[str, asyncio.Lock] = {}
        self._last_post: dict[str, float] = {}

    async def send(
        self,
        client: AsyncWebClient,
        method: str,
        channel: str,
        request_id: str | None,
        payload: dict[str, Any],
    ) -> Any:
        lock = self._pacing.setdefault(channel, asyncio.Lock())
        for attempt in range(1, self._attempts + 1):
            async with lock:
                wait = self._last_post.get(channel, 0) + self._interval_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_post[channel] = time.monotonic()
                try:
                    return await getattr(client, method)(channel=channel, **payload)
                except SlackApiError as exc:
                    error = exc.response.get("error")
                except Exception as exc:  # network trouble: same treatment
                    error = type(exc).__name__
            log.warning(
                "slack post failed",
                method=method,
                request_id=request_id,
                error=error,
                attempt=attempt,
            )
            if attempt < self._attempts:
                await asyncio.sleep(min(2**attempt, 10))
        log.error("slack post gave up", method=method, request_id=request_id, channel=channel)
        return None


class SlackSurface:
    """The conversation layer's Surface port on Slack, bound to one Web API client.
    ``streaming`` (chat turns): answers are streamed (adapters/slack/stream.py)."""

    def __init__(
        self, client: AsyncWebClient, poster: SlackPoster, streaming: Streaming | None = None
    ) -> None:
        self._client = client
        self._poster = poster
        self._streaming = streaming

    async def post(self, where: ConversationRef, message: Message) -> str | None:
        payload = {
            **render_message(message),
            "thread_ts": where.thread or None,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        response = await self._poster.send(
            self._client, "chat_postMessage", where.conversation, request_id_of(message), payload
        )
        return response["ts"] if response else None

    async def update(self, where: ConversationRef, message_id: str, message: Message) -> bool:
        payload = render_message(message)
        payload.pop("unfurl_links", None)  # chat.update takes neither
        payload.pop("unfurl_media", None)
        return await self.send_update(where, message_id, payload, request_id_of(message))

    async def send_update(
        self, where: ConversationRef, message_id: str, payload: dict[str, Any], request_id: Any
    ) -> bool:
        """chat.update with a rendered payload, paced and retried like every post."""
        payload = {**payload, "ts": message_id}
        response = await self._poster.send(
            self._client, "chat_update", where.conversation, request_id, payload
        )
        return response is not None

    async def post_privately(self, where: ConversationRef, user_id: str, message: Message) -> bool:
        """An ephemeral message in the thread, seen by ``user_id`` only."""
        payload = render_message(message)
        try:
            await self._client.chat_postEphemeral(
                channel=where.conversation,
                user=user_id,
                thread_ts=where.thread or None,
                text=payload["text"],
                blocks=payload["blocks"],
            )
        except SlackApiError as exc:
            log.error(
                "private answer failed",
                request_id=request_id_of(message),
                error=exc.response.get("error"),
            )
            return False
        return True

    async def reply(self, turn: Turn) -> Reply:
        """The working message at once (or the one an earlier attempt at the turn posted);
        the answer streamed into the thread when this surface streams, else shown whole in
        its place."""
        working = turn.resume_message or await self.post(turn.where, Working())
        if self._streaming is None:
            return WorkingMessage(self, turn.where, working)
        return SlackReply(self, self._client, turn, working, self._streaming)


class SlackSurfaces:
    """Surfaces for recorded Slack conversations outside any event: the bot token's client
    (one workspace), or a client with the token of the conversation's installation
    (multi-workspace: the workspace's own install, else its Enterprise Grid org's)."""

    def __init__(
        self,
        poster: SlackPoster,
        base_url: str,
        logger: logging.Logger,
        *,
        bot_token: str | None = None,
        installations: AsyncInstallationStore | None = None,
    ) -> None:
        self._poster = poster
        self._base_url = base_url
        self._logger = logger
        self._bot_token = bot_token
        self._installations = installations

    async def open(self, where: ConversationRef) -> SlackSurface:
        token = self._bot_token or await self._installation_token(where)
        # Bolt names the event's workspace on every call; an org-wide token needs it.
        client = web_client(token, self._base_url, self._logger, team_id=where.tenant or None)
        return SlackSurface(client, self._poster)

    async def _installation_token(self, where: ConversationRef) -> str:
        if self._installations is None:
            raise Unreachable("Slack has neither a bot token nor installations here")
        enterprise_id = where.extra.get("enterprise_id") or None
        bot = await self._installations.async_find_bot(
            enterprise_id=enterprise_id, team_id=where.tenant
        )
        if bot is None and enterprise_id:
            bot = await self._installations.async_find_bot(
                enterprise_id=enterprise_id, team_id=None, is_enterprise_install=True
            )
        if bot is None or not bot.bot_token:
            raise Unreachable(f"no Slack installation for workspace {where.tenant}")
        return bot.bot_token
