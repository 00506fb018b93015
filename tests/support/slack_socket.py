"""Slack's Socket Mode, locally: the Web API double plus the WebSocket side.

``apps.connections.open`` (called with the app-level token, ``xapp-…``) answers a
``ws://`` URL on this server; a client that connects gets Slack's ``hello`` and then the
envelopes a test pushes::

    {"envelope_id": "…", "type": "events_api", "payload": {<event_callback>},
     "accepts_response_payload": false, "retry_attempt": 0, "retry_reason": ""}

Each envelope must be acknowledged by the client with ``{"envelope_id": "…"}`` (optionally
with a ``payload``); acks are recorded in :meth:`SlackSocketDouble.acks`. A wrong app token
gets ``invalid_auth``; a ``disconnect`` message (``refresh_requested``) can be sent to make
the client reconnect, as Slack does every few hours.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from tests.support.slack_api import SlackApiDouble, _err, _ok


class SlackSocketDouble(SlackApiDouble):
    def __init__(self, *args: Any, app_token: str = "xapp-test", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app_token = app_token
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: list[dict[str, Any]] = []
        self.connections = 0  # sessions ever opened

    # -- control (any thread) -------------------------------------------------------------

    def acks(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._acks)

    def connected(self) -> int:
        with self._lock:
            return sum(not ws.closed for ws in self._sockets)

    def wait_connected(self, count: int = 1, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while self.connected() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Socket Mode client connected within {timeout_s} s")
            time.sleep(0.02)

    def push(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, envelope_id: str = ""
    ) -> str:
        """Send one envelope (``events_api``, ``interactive``, ``slash_commands``) to every
        connected client; returns its envelope id."""
        envelope = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout" if retry_attempt else ""
        self._broadcast(envelope)
        return str(envelope["envelope_id"])

    def disconnect(self, reason: str = "refresh_requested") -> None:
        self._broadcast({"type": "disconnect", "reason": reason, "debug_info": {"host": "x"}})

    def wait_acked(self, envelope_id: str, timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for ack in self.acks():
                if ack.get("envelope_id") == envelope_id:
                    return ack
            if time.monotonic() > deadline:
                raise TimeoutError(f"envelope {envelope_id} not acknowledged in {timeout_s} s")
            time.sleep(0.01)

    def _broadcast(self, message: dict[str, Any]) -> None:
        if self._loop is None:
            raise RuntimeError("SlackSocketDouble is not started")
        text = json.dumps(message)

        async def send() -> None:
            for ws in list(self._sockets):
                if not ws.closed:
                    await ws.send_str(text)

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

    # -- server (its own thread) ----------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        app.router.add_get("/link", self._websocket)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["method"] != "apps.connections.open":
            return await super()._handle(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        args = dict(request.query)
        if token != self.app_token:
            return self._respond(request, "apps.connections.open", args, 200, _err("invalid_auth"))
        url = f"ws://{self.host}:{self.port}/link?ticket={uuid.uuid4()}&app_id=A0ANSWER"
        return self._respond(request, "apps.connections.open", args, 200, _ok(url=url))

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._sockets.append(ws)
            self.connections += 1
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "local-double", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": "A0ANSWER"},
                }
            )
        )
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except ValueError:
                continue
            if isinstance(data, dict) and "envelope_id" in data:
                with self._lock:
                    self._acks.append({**data, "received_at": time.monotonic()})
        with self._lock:
            self._sockets.remove(ws)
        return ws

    async def _serve_stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        await super()._serve_stop()
