"""Socket Mode: Slack pushes events over a WebSocket the service opens, so no public URL
is needed (development, or a network with no inbound access).

An event envelope is acknowledged the moment it arrives, then goes through the same claim
and Bolt dispatch as an HTTP event (:meth:`SlackEndpoint.accept_event`): a redelivered
envelope, or the same event on another replica, is processed once. Interactivity and slash
commands are dispatched to Bolt first, because their response can carry a payload.
"""

from __future__ import annotations

import asyncio
import logging
import time

import structlog
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackEndpoint

log = structlog.get_logger()


class SocketModeTransport:
    def __init__(
        self,
        endpoint: SlackEndpoint,
        app_token: str,
        web_client: AsyncWebClient,
        logger: logging.Logger | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._app_token = app_token
        self._web_client = web_client  # only for apps.connections.open (api_base_url applies)
        self._logger = logger  # the masking Slack-library logger
        self._socket: SocketModeClient | None = None
        self._connecting: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        session = self._socket.current_session if self._socket else None
        return session is not None and not session.closed

    async def start(self) -> None:
        """Connect in the background: an unreachable Slack never blocks the service's start;
        slack_sdk keeps retrying and reconnects when Slack asks it to."""
        self._socket = SocketModeClient(
            app_token=self._app_token,
            web_client=self._web_client,
            logger=self._logger,
            ping_interval=10,
        )
        self._socket.socket_mode_request_listeners.append(self._on_request)
        self._connecting = asyncio.create_task(self._socket.connect())

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._socket is not None:
            await self._socket.close()

    async def _on_request(self, socket: SocketModeClient, request: SocketModeRequest) -> None:
        started = time.time()
        try:
            if request.type == "events_api":
                await socket.send_socket_mode_response(
                    SocketModeResponse(envelope_id=request.envelope_id)
                )
                self._accept(request)
                return
            response = await run_async_bolt_app(self._endpoint.app, request)
            await send_async_response(socket, request, response, started)
        except Exception:
            log.exception("socket mode envelope failed", type=request.type)

    def _accept(self, request: SocketModeRequest) -> None:
        payload = request.payload
        event_id = payload.get("event_id")
        if payload.get("type") != "event_callback" or not event_id:
            log.info("socket mode envelope ignored", type=payload.get("type"))
            return
        headers = {"X-Slack-Retry-Num": str(request.retry_attempt or 0)}
        if request.retry_reason:
            headers["X-Slack-Retry-Reason"] = request.retry_reason
        self._endpoint.accept_event(event_id, payload, headers, mode="socket_mode")
