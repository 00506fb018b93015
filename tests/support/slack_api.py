"""A local Slack Web API: a protocol double for Slack, plus helpers that sign requests INTO
the service exactly as Slack does.

Tests point the real slack_sdk client at it::

    with SlackApiDouble() as slack:
        slack.add_user("U1", "ada@harbor.example")
        slack.add_channel("C1", kind="public", members=["U1", "UBOT"])
        client = AsyncWebClient(token="xoxb-test", base_url=slack.url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert slack.messages()[0]["text"] == "hi"

It speaks the real wire format: ``GET`` or ``POST /api/<method>``, arguments taken from the
query string AND the body (``application/x-www-form-urlencoded`` or ``application/json``),
``Authorization: Bearer <token>`` (or a ``token`` argument), answers ``{"ok": true, ...}`` or
HTTP 200 ``{"ok": false, "error": "<code>"}``. Form/query values arrive as strings; ``blocks``,
``attachments`` and ``metadata`` sent as JSON strings are decoded, so ``args["blocks"]`` is a
list whatever the encoding.

How slack_sdk 3.48's AsyncWebClient puts each method on the wire (pinned by
tests/unit/test_slack_api_double.py):

- JSON body: ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
  ``chat.startStream``, ``chat.appendStream``, ``chat.stopStream`` (the
  ``chat_stream`` helper sends its text as ``markdown_text`` chunks, ``chunks: []`` when
  nothing is left), ``assistant.threads.setStatus``, ``assistant.threads.setSuggestedPrompts``
  (whether or not there are blocks).
- ``POST`` with the arguments in the QUERY STRING and an empty body (yet a
  ``Content-Type: application/x-www-form-urlencoded`` header): ``auth.test``, ``reactions.add``,
  ``chat.delete``.
- ``GET`` with a query string: ``users.info``, ``conversations.info``,
  ``conversations.members``.
- Form bodies only appear when a caller uses ``api_call(..., data=...)``.

Scripted failures, FIFO per method with :meth:`SlackApiDouble.fail` (checked after auth):

- ``429`` / ``429:<seconds>``: HTTP 429, ``Retry-After`` (default 1), body
  ``{"ok": false, "error": "ratelimited"}``. Note slack_sdk's ``AsyncRateLimitErrorRetryHandler``
  sleeps ``int(retry_after[0]) + random()`` seconds: only the FIRST DIGIT of the header counts
  ("30" sleeps ~3 s), so retrying tests should use ``429:0``.
- ``500`` / ``503``: that status with ``{"ok": false, "error": "fatal_error"}``
  (``AsyncServerErrorRetryHandler`` retries both).
- ``error:<code>``: HTTP 200 ``{"ok": false, "error": "<code>"}``.

Faithful details that a lenient double would hide:

- ``conversations.info`` for an IM has ``user`` (the non-bot member) and no ``name``;
  a private channel whose id starts with ``G`` is the legacy shape (``is_channel`` false,
  ``is_group`` true), one starting with ``C`` the current shape (``is_channel`` true).
- ``reactions.add`` twice with the same (channel, timestamp, name) -> ``already_reacted``.
- ``chat.postMessage`` accepts any channel id (registered or not); ``chat.update`` and
  ``chat.delete`` need a message this double posted (else ``message_not_found``).

Streaming (``chat.startStream`` → ``chat.appendStream`` … → ``chat.stopStream``), the way
slack_sdk's ``chat_stream`` helper sends it (text in ``markdown_text`` or in
``markdown_text`` chunks): ``startStream`` posts a message in the thread (``thread_ts``
required; outside a DM, ``recipient_user_id`` and ``recipient_team_id`` too, else
``invalid_arguments``) whose ``text`` grows with each append; ``stopStream`` adds its last
text and its ``blocks`` under the text and ends the stream; appending to or stopping a
message that is not streaming is ``message_not_in_streaming_state``. The streamed text and
state are in :meth:`SlackApiDouble.streams`. ``chat.update`` may replace a streamed message
(text and blocks), as Slack allows. A refused stream is scripted like any failure:
``fail("chat.startStream", "error:feature_not_enabled")``.

AI-app surfaces: ``assistant.threads.setStatus`` statuses are kept per thread
(:meth:`SlackApiDouble.statuses`: every status set, in order, ``""`` clears), and a message
the bot posts in the thread clears it, as Slack does; ``assistant.threads.setSuggestedPrompts``
takes 1–4 prompts of ``{"title", "message"}`` (else ``invalid_arguments``), kept in
:meth:`SlackApiDouble.suggested_prompts`.

Several workspaces (multi-workspace OAuth): every bot token stands for a
:class:`BotInstallation` (a workspace, or an Enterprise Grid org for an org-wide install).
The constructor's ``bot_token`` is installed from the start; :meth:`SlackApiDouble.add_installation`
adds more, and :meth:`SlackApiDouble.script_oauth` scripts an OAuth code whose exchange
installs one. ``auth.test`` describes the calling token's installation, messages are posted as
its bot user, and every recorded call has the ``token`` it used (:meth:`tokens_used`)::

    slack.script_oauth("code-1", BotInstallation("xoxb-a", team_id="T1", bot_user_id="UB1"))
    # ... the service exchanges the code, then answers with that workspace's token:
    assert slack.tokens_used("chat.postMessage") == ["xoxb-a"]

``oauth.v2.access`` (no bearer token) authenticates the app by HTTP Basic auth (how slack_sdk
sends it) or ``client_id``/``client_secret`` arguments, then exchanges a scripted code once,
answering in Slack's wire shape: ``team`` and ``enterprise`` objects (``enterprise`` null
outside Enterprise Grid), or for an org-wide install ``team: null`` and
``is_enterprise_install: true``. Errors, as Slack names them: ``invalid_client_id``,
``bad_client_secret``, ``invalid_code`` (unknown or already used), ``bad_redirect_uri``.
For an org-wide token ``auth.test`` answers ``team_id`` = the enterprise id and
``is_enterprise_install: true``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.threaded import ThreadedServer

CHANNEL_KINDS = ("public", "private", "im", "mpim")
_JSON_ARGS = ("blocks", "attachments", "metadata")
_TS_BASE = 1_700_000_000
_BODY_BYTES = web.RequestKey("body_bytes", int)


def validate_failure(behaviour: str) -> str:
    """Return ``behaviour`` if it is a known failure, else raise ValueError."""
    if behaviour in {"429", "500", "503"}:
        return behaviour
    name, sep, arg = behaviour.partition(":")
    if sep and name == "429" and arg.isdigit():
        return behaviour
    if sep and name == "error" and arg:
        return behaviour
    raise ValueError(f"unknown Slack failure behaviour {behaviour!r}")


def _decode_json_args(args: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_ARGS:
        value = args.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def _err(code: str, **fields: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, **fields}


@dataclass(frozen=True, slots=True)
class BotInstallation:
    """What one bot token stands for: a workspace (``team_id``, inside an Enterprise Grid org
    when ``enterprise_id`` is set too), or a whole org (``is_enterprise_install``)."""

    token: str
    team_id: str | None = None
    bot_user_id: str = "UBOT"
    bot_id: str = "B1"
    team_name: str | None = None
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False
    app_id: str = "A1"
    scope: str = "chat:write"

    def __post_init__(self) -> None:
        if self.is_enterprise_install:
            if not self.enterprise_id or self.team_id is not None:
                raise ValueError("an org-wide install has an enterprise_id and no team_id")
        elif not self.team_id:
            raise ValueError("a workspace install needs a team_id")

    @property
    def _slug(self) -> str:
        name = (self.enterprise_name if self.is_enterprise_install else self.team_name) or ""
        return "".join(ch for ch in name.lower() if ch.isalnum()) or "workspace"

    def auth_test(self) -> dict[str, Any]:
        if self.is_enterprise_install:
            url, team, team_id = (
                f"https://{self._slug}.enterprise.slack.com/",
                self.enterprise_name,
                self.enterprise_id,
            )
        else:
            url, team, team_id = f"https://{self._slug}.slack.com/", self.team_name, self.team_id
        fields: dict[str, Any] = {
            "url": url,
            "team": team,
            "user": "answerdesk",
            "team_id": team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": self.is_enterprise_install,
        }
        if self.enterprise_id:
            fields["enterprise_id"] = self.enterprise_id
        return _ok(**fields)

    def oauth_v2_access(self, installer: str) -> dict[str, Any]:
        """The oauth.v2.access answer for this install (bot scopes only, no user token)."""
        team = (
            None
            if self.is_enterprise_install
            else {"id": self.team_id, "name": self.team_name or self.team_id}
        )
        enterprise = (
            {"id": self.enterprise_id, "name": self.enterprise_name or self.enterprise_id}
            if self.enterprise_id
            else None
        )
        return _ok(
            app_id=self.app_id,
            authed_user={"id": installer},
            scope=self.scope,
            token_type="bot",
            access_token=self.token,
            bot_user_id=self.bot_user_id,
            team=team,
            enterprise=enterprise,
            is_enterprise_install=self.is_enterprise_install,
        )


@dataclass(frozen=True, slots=True)
class _ScriptedCode:
    installation: BotInstallation
    installer: str
    redirect_uri: str | None


class SlackApiDouble(ThreadedServer):
    """Runs in its own thread with its own event loop (like ``ModelServer``), so it serves
    async tests, sync tests and subprocesses alike.

    State: a user directory (:meth:`add_user`; the bot user is always present), channels
    (:meth:`add_channel`), posted messages (:meth:`messages`), ephemeral messages
    (:meth:`ephemerals`), every call recorded in :attr:`calls` as
    ``{"method", "http_method", "args", "query", "body_bytes", "headers", "status", "response",
    "token", "at"}`` (``args`` = query and body merged; headers lower-cased; ``token`` the bot
    token the call used, None for ``oauth.v2.access`` and unauthenticated calls; ``at`` the
    ``time.monotonic()`` of the answer, which other processes on the machine share).
    Installations (:meth:`add_installation`, :meth:`script_oauth`) survive :meth:`reset`.
    """

    members_page_size: int = 2

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = "xoxb-test",
        team_id: str = "T0HARBOR1",
        bot_user_id: str = "UBOT",
        client_id: str = "1111.2222",
        client_secret: str = "test-client-secret",
    ) -> None:
        self.host = host
        self.port = port
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = "B1"
        self.client_id = client_id
        self.client_secret = client_secret
        self._installations: dict[str, BotInstallation] = {
            bot_token: BotInstallation(
                bot_token, team_id=team_id, bot_user_id=bot_user_id, bot_id="B1", team_name="Harbor"
            )
        }
        self._codes: dict[str, _ScriptedCode] = {}
        self.calls: list[dict] = []
        self._lock = threading.Lock()
        self._users: dict[str, dict] = {}
        self._channels: dict[str, dict] = {}
        self._messages: list[dict] = []
        self._ephemerals: list[dict] = []
        self._reactions: set[tuple[str, str, str]] = set()
        self._streams: dict[str, dict] = {}  # ts -> stream details
        self._statuses: list[dict] = []
        self._prompts: list[dict] = []
        self._failures: dict[str, deque[str]] = {}
        self._ts = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._add_bot_user()

    # -- control (any thread) -------------------------------------------------------------

    @property
    def url(self) -> str:
        """slack_sdk ``base_url`` (trailing slash required)."""
        if self._thread is None:
            raise RuntimeError("SlackApiDouble is not started")
        return f"http://{self.host}:{self.port}/api/"

    def _add_bot_user(self) -> None:
        self._users[self.bot_user_id] = {
            "id": self.bot_user_id,
            "team_id": self.team_id,
            "name": "answerdesk",
            "is_bot": True,
            "email": None,
        }

    def add_user(
        self,
        user_id: str,
        email: str | None,
        *,
        team_id: str | None = None,
        is_bot: bool = False,
        name: str | None = None,
    ) -> None:
        if name is None:
            name = email.split("@", 1)[0] if email else user_id.lower()
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "team_id": team_id or self.team_id,
                "name": name,
                "is_bot": is_bot,
                "email": email,
            }

    def add_channel(
        self,
        channel_id: str,
        *,
        kind: str,
        members: list[str] | tuple[str, ...] = (),
        name: str | None = None,
    ) -> None:
        if kind not in CHANNEL_KINDS:
            raise ValueError(f"channel kind must be one of {CHANNEL_KINDS}, not {kind!r}")
        with self._lock:
            self._channels[channel_id] = {
                "id": channel_id,
                "kind": kind,
                "members": list(members),
                "name": name,
            }

    def add_installation(self, installation: BotInstallation) -> None:
        """Accept ``installation.token`` from now on (a workspace or org already installed)."""
        with self._lock:
            self._installations[installation.token] = installation

    def script_oauth(
        self,
        code: str,
        installation: BotInstallation,
        *,
        installer: str = "U0INSTALLER",
        redirect_uri: str | None = None,
    ) -> None:
        """Make ``code`` exchangeable once by ``oauth.v2.access``; the exchange installs
        ``installation`` (its token works from then on). With ``redirect_uri``, the exchange
        must name the same one."""
        with self._lock:
            self._codes[code] = _ScriptedCode(installation, installer, redirect_uri)

    def installations(self) -> list[BotInstallation]:
        with self._lock:
            return list(self._installations.values())

    def tokens_used(self, method: str | None = None) -> list[str | None]:
        """The bot token of each recorded call (of ``method``), oldest first."""
        with self._lock:
            return [c["token"] for c in self.calls if method is None or c["method"] == method]

    def fail(self, method: str, *behaviours: str) -> None:
        """Queue failures for the next calls of ``method`` (FIFO), e.g.
        ``fail("chat.postMessage", "429:0", "500")``."""
        checked = [validate_failure(b) for b in behaviours]
        with self._lock:
            self._failures.setdefault(method, deque()).extend(checked)

    def calls_to(self, method: str) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(c) for c in self.calls if c["method"] == method]

    def messages(self) -> list[dict]:
        """Posted messages in their current state (``chat.update`` applied), oldest first:
        ``{"channel", "ts", "thread_ts", "text", "blocks"}``."""
        with self._lock:
            return [
                {k: copy.deepcopy(m[k]) for k in ("channel", "ts", "thread_ts", "text", "blocks")}
                for m in self._messages
            ]

    def ephemerals(self) -> list[dict]:
        """``chat.postEphemeral`` messages: ``{"channel", "user", "message_ts", "thread_ts",
        "text", "blocks"}``."""
        with self._lock:
            return copy.deepcopy(self._ephemerals)

    def streams(self) -> list[dict]:
        """Streamed messages, oldest first: ``{"channel", "ts", "thread_ts", "markdown"
        (every piece of text streamed, joined), "pieces" (the text each call carried),
        "streaming" (not stopped yet), "stop_blocks", "recipient_user_id",
        "recipient_team_id"}``."""
        with self._lock:
            return copy.deepcopy(list(self._streams.values()))

    def statuses(self, channel: str | None = None, thread_ts: str | None = None) -> list[str]:
        """Every assistant status set (``""`` = cleared, also by a message in the thread),
        oldest first, optionally for one thread."""
        with self._lock:
            return [
                s["status"]
                for s in self._statuses
                if (channel is None or s["channel_id"] == channel)
                and (thread_ts is None or s["thread_ts"] == thread_ts)
            ]

    def suggested_prompts(self) -> list[dict]:
        """``assistant.threads.setSuggestedPrompts`` calls: ``{"channel_id", "thread_ts",
        "title", "prompts"}``."""
        with self._lock:
            return copy.deepcopy(self._prompts)

    def reset(self, *, directory: bool = False) -> None:
        """Clear calls, messages, ephemerals, reactions, streams, statuses, prompts and
        scripted failures; with ``directory=True`` also users (except the bot) and
        channels."""
        with self._lock:
            self.calls.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._reactions.clear()
            self._streams.clear()
            self._statuses.clear()
            self._prompts.clear()
            self._failures.clear()
            if directory:
                self._users.clear()
                self._channels.clear()
                self._add_bot_user()

    # -- lifecycle ------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle)
        return app

    # -- handlers (server thread) ---------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        request[_BODY_BYTES] = len(raw)
        if raw:
            if request.content_type == "application/json":
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    return self._respond(request, method, args, 200, _err("invalid_json"))
                args.update(body)
            else:
                args.update(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        _decode_json_args(args)

        if method == "oauth.v2.access":
            return self._oauth(request, args)
        token = args.pop("token", None)
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ").strip()
        if not token:
            return self._respond(request, method, args, 200, _err("not_authed"))
        with self._lock:
            caller = self._installations.get(token)
        if caller is None:
            return self._respond(request, method, args, 200, _err("invalid_auth"), token=token)

        failed = self._scripted_failure(request, method, args, token)
        if failed is not None:
            return failed

        handler = _METHODS.get(method)
        with self._lock:
            body = handler(self, args, caller) if handler else _err("unknown_method")
        return self._respond(request, method, args, 200, body, token=token)

    def _scripted_failure(
        self, request: web.Request, method: str, args: dict[str, Any], token: str | None
    ) -> web.Response | None:
        with self._lock:
            queue = self._failures.get(method)
            behaviour = queue.popleft() if queue else None
        if behaviour is not None:
            name, _, arg = behaviour.partition(":")
            if name == "429":
                seconds = arg or "1"
                return self._respond(
                    request,
                    method,
                    args,
                    429,
                    _err("ratelimited"),
                    headers={"Retry-After": seconds},
                    token=token,
                )
            if name in {"500", "503"}:
                return self._respond(
                    request, method, args, int(name), _err("fatal_error"), token=token
                )
            return self._respond(request, method, args, 200, _err(arg), token=token)
        return None

    def _oauth(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        """oauth.v2.access: app credentials by HTTP Basic auth or arguments, then a code."""
        method = "oauth.v2.access"
        client_id, client_secret = args.get("client_id"), args.get("client_secret")
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization.removeprefix("Basic ").strip()).decode()
            except ValueError:
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id:
            return self._respond(request, method, args, 200, _err("invalid_client_id"))
        if client_secret != self.client_secret:
            return self._respond(request, method, args, 200, _err("bad_client_secret"))
        failed = self._scripted_failure(request, method, args, None)
        if failed is not None:
            return failed
        with self._lock:
            scripted = self._codes.get(str(args.get("code", "")))
            if scripted is None:
                body = _err("invalid_code")
            elif scripted.redirect_uri is not None and args.get("redirect_uri") != (
                scripted.redirect_uri
            ):
                body = _err("bad_redirect_uri")
            else:
                del self._codes[str(args["code"])]  # a code is exchanged once
                self._installations[scripted.installation.token] = scripted.installation
                body = scripted.installation.oauth_v2_access(scripted.installer)
        return self._respond(request, method, args, 200, body)

    def _respond(
        self,
        request: web.Request,
        method: str,
        args: dict[str, Any],
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        token: str | None = None,
    ) -> web.Response:
        record = {
            "method": method,
            "http_method": request.method,
            "args": args,
            "query": dict(request.query),
            "body_bytes": request.get(_BODY_BYTES, 0),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "status": status,
            "response": body,
            "token": token,
            "at": time.monotonic(),  # the machine-wide clock: comparable across processes
        }
        with self._lock:
            self.calls.append(copy.deepcopy(record))
        return web.json_response(body, status=status, headers=headers)

    # Method implementations run under self._lock and return the response body.

    def _next_ts(self) -> str:
        n = next(self._ts) * 100
        return f"{_TS_BASE + n // 1_000_000}.{n % 1_000_000:06d}"

    def _auth_test(self, args: dict, caller: BotInstallation) -> dict:
        return caller.auth_test()

    def _users_info(self, args: dict, caller: BotInstallation) -> dict:
        user = self._users.get(str(args.get("user", "")))
        if user is None:
            return _err("user_not_found")
        profile: dict[str, Any] = {"real_name": user["name"], "display_name": user["name"]}
        if user["email"] is not None:
            profile["email"] = user["email"]
        return _ok(
            user={
                "id": user["id"],
                "team_id": user["team_id"],
                "name": user["name"],
                "real_name": user["name"],
                "deleted": False,
                "is_bot": user["is_bot"],
                "is_app_user": False,
                "profile": profile,
            }
        )

    def _conversations_info(self, args: dict, caller: BotInstallation) -> dict:
        channel = self._channels.get(str(args.get("channel", "")))
        if channel is None:
            return _err("channel_not_found")
        kind, cid = channel["kind"], channel["id"]
        legacy_group = kind == "private" and cid.startswith("G")
        info: dict[str, Any] = {
            "id": cid,
            "is_channel": kind == "public" or (kind == "private" and not legacy_group),
            "is_group": legacy_group,
            "is_im": kind == "im",
            "is_mpim": kind == "mpim",
            "is_private": kind != "public",
            "is_archived": False,
            "context_team_id": caller.team_id or self.team_id,
        }
        if kind == "im":
            others = [m for m in channel["members"] if m != caller.bot_user_id]
            info["user"] = others[0] if others else None
        elif kind == "mpim":
            default = "mpdm-" + "--".join(m.lower() for m in channel["members"]) + "-1"
            info["name"] = channel["name"] or default
        else:
            info["name"] = channel["name"] or cid.lower()
        return _ok(channel=info)

    def _conversations_members(self, args: dict, caller: BotInstallation) -> dict:
        channel = self._channels.get(str(args.get("channel", "")))
        if channel is None:
            return _err("channel_not_found")
        offset = 0
        cursor = str(args.get("cursor") or "")
        if cursor:
            try:
                prefix, _, number = base64.b64decode(cursor).decode().partition(":")
                if prefix != "offset":
                    raise ValueError(cursor)
                offset = int(number)
            except ValueError:
                return _err("invalid_cursor")
        size = max(1, int(self.members_page_size))
        with contextlib.suppress(TypeError, ValueError):
            if int(args.get("limit") or 0) > 0:
                size = min(size, int(args["limit"]))
        members = channel["members"]
        page = members[offset : offset + size]
        end = offset + size
        next_cursor = (
            base64.b64encode(f"offset:{end}".encode()).decode() if end < len(members) else ""
        )
        return _ok(members=page, response_metadata={"next_cursor": next_cursor})

    def _message_fields(self, args: dict) -> dict | None:
        text = args.get("text")
        blocks = args.get("blocks")
        if not text and not blocks:
            return None
        return {"text": text or "", "blocks": blocks}

    def _chat_post_message(self, args: dict, caller: BotInstallation) -> dict:
        channel = args.get("channel")
        if not channel:
            return _err("channel_not_found")
        fields = self._message_fields(args)
        if fields is None:
            return _err("no_text")
        ts = self._next_ts()
        thread_ts = args.get("thread_ts") or None
        self._messages.append(
            {"channel": channel, "ts": ts, "thread_ts": thread_ts, **copy.deepcopy(fields)}
        )
        self._clear_status(str(channel), thread_ts)
        message: dict[str, Any] = {
            "type": "message",
            "user": caller.bot_user_id,
            "bot_id": caller.bot_id,
            "ts": ts,
            "team": caller.team_id or self.team_id,
            **fields,
        }
        if fields["blocks"] is None:
            del message["blocks"]
        if thread_ts:
            message["thread_ts"] = thread_ts
        return _ok(channel=channel, ts=ts, message=message)

    def _chat_update(self, args: dict, caller: BotInstallation) -> dict:
        channel, ts = args.get("channel"), args.get("ts")
        target = next(
            (m for m in self._messages if m["channel"] == channel and m["ts"] == ts), None
        )
        if target is None:
            return _err("message_not_found")
        if "text" not in args and "blocks" not in args:
            return _err("no_text")
        if "text" in args:
            target["text"] = args["text"] or ""
        if "blocks" in args:
            target["blocks"] = copy.deepcopy(args["blocks"])
        message = {"type": "message", "user": caller.bot_user_id, "bot_id": caller.bot_id}
        message.update(text=target["text"], blocks=copy.deepcopy(target["blocks"]))
        return _ok(channel=channel, ts=ts, text=target["text"], message=message)

    def _chat_post_ephemeral(self, args: dict, caller: BotInstallation) -> dict:
        channel, user = args.get("channel"), args.get("user")
        if not channel:
            return _err("channel_not_found")
        if not user:
            return _err("user_not_found")
        fields = self._message_fields(args)
        if fields is None:
            return _err("no_text")
        ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "message_ts": ts,
                "thread_ts": args.get("thread_ts") or None,
                **copy.deepcopy(fields),
            }
        )
        return _ok(message_ts=ts)

    def _chat_delete(self, args: dict, caller: BotInstallation) -> dict:
        channel, ts = args.get("channel"), args.get("ts")
        for index, message in enumerate(self._messages):
            if message["channel"] == channel and message["ts"] == ts:
                del self._messages[index]
                return _ok(channel=channel, ts=ts)
        return _err("message_not_found")

    @staticmethod
    def _stream_text(args: dict) -> str:
        text = str(args.get("markdown_text") or "")
        for chunk in args.get("chunks") or []:
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                text += str(chunk.get("text") or "")
        return text

    def _chat_start_stream(self, args: dict, caller: BotInstallation) -> dict:
        channel, thread_ts = args.get("channel"), args.get("thread_ts")
        if not channel:
            return _err("channel_not_found")
        in_dm = str(channel).startswith("D")
        recipient = args.get("recipient_user_id"), args.get("recipient_team_id")
        if not thread_ts or (not in_dm and not all(recipient)):
            return _err("invalid_arguments")
        ts = self._next_ts()
        text = self._stream_text(args)
        self._messages.append(
            {"channel": channel, "ts": ts, "thread_ts": thread_ts, "text": text, "blocks": None}
        )
        self._streams[ts] = {
            "channel": channel,
            "ts": ts,
            "thread_ts": thread_ts,
            "markdown": text,
            "pieces": [text],
            "streaming": True,
            "stop_blocks": None,
            "recipient_user_id": recipient[0],
            "recipient_team_id": recipient[1],
        }
        self._clear_status(str(channel), str(thread_ts))
        return _ok(channel=channel, ts=ts)

    def _streamed(self, args: dict) -> tuple[dict | None, dict | None, dict | None]:
        """(the stream, its message, an error) for append/stop."""
        ts = args.get("ts")
        message = next(
            (m for m in self._messages if m["channel"] == args.get("channel") and m["ts"] == ts),
            None,
        )
        if message is None:
            return None, None, _err("message_not_found")
        stream = self._streams.get(str(ts))
        if stream is None or not stream["streaming"]:
            return None, None, _err("message_not_in_streaming_state")
        return stream, message, None

    def _chat_append_stream(self, args: dict, caller: BotInstallation) -> dict:
        stream, message, error = self._streamed(args)
        if error is not None or stream is None or message is None:
            return error or _err("message_not_found")
        text = self._stream_text(args)
        if not text:
            return _err("no_text")
        stream["markdown"] += text
        stream["pieces"].append(text)
        message["text"] = stream["markdown"]
        return _ok(channel=message["channel"], ts=message["ts"])

    def _chat_stop_stream(self, args: dict, caller: BotInstallation) -> dict:
        stream, message, error = self._streamed(args)
        if error is not None or stream is None or message is None:
            return error or _err("message_not_found")
        text = self._stream_text(args)
        if text:
            stream["markdown"] += text
            stream["pieces"].append(text)
        stream["streaming"] = False
        stream["stop_blocks"] = copy.deepcopy(args.get("blocks"))
        message["text"] = stream["markdown"]
        message["blocks"] = copy.deepcopy(args.get("blocks"))
        return _ok(channel=message["channel"], ts=message["ts"])

    def _clear_status(self, channel: str, thread_ts: str | None) -> None:
        """A message from the bot in a thread ends the thread's assistant status."""
        if thread_ts and self._current_status(channel, thread_ts):
            self._statuses.append({"channel_id": channel, "thread_ts": thread_ts, "status": ""})

    def _current_status(self, channel: str, thread_ts: str) -> str:
        """The status a thread shows now ("" for none)."""
        current = ""
        for status in self._statuses:
            if status["channel_id"] == channel and status["thread_ts"] == thread_ts:
                current = status["status"]
        return current

    def _assistant_set_status(self, args: dict, caller: BotInstallation) -> dict:
        if not args.get("channel_id") or not args.get("thread_ts") or "status" not in args:
            return _err("invalid_arguments")
        self._statuses.append(
            {
                "channel_id": str(args["channel_id"]),
                "thread_ts": str(args["thread_ts"]),
                "status": str(args["status"]),
            }
        )
        return _ok()

    def _assistant_set_suggested_prompts(self, args: dict, caller: BotInstallation) -> dict:
        prompts = args.get("prompts")
        valid = (
            isinstance(prompts, list)
            and 1 <= len(prompts) <= 4
            and all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts)
        )
        if not args.get("channel_id") or not valid:
            return _err("invalid_arguments")
        self._prompts.append(
            {
                "channel_id": args["channel_id"],
                "thread_ts": args.get("thread_ts"),
                "title": args.get("title"),
                "prompts": copy.deepcopy(prompts),
            }
        )
        return _ok()

    def _reactions_add(self, args: dict, caller: BotInstallation) -> dict:
        channel, timestamp, name = args.get("channel"), args.get("timestamp"), args.get("name")
        if not channel or not timestamp:
            return _err("no_item_specified")
        if not name:
            return _err("invalid_name")
        key = (str(channel), str(timestamp), str(name))
        if key in self._reactions:
            return _err("already_reacted")
        self._reactions.add(key)
        return _ok()


_METHODS = {
    "auth.test": SlackApiDouble._auth_test,
    "users.info": SlackApiDouble._users_info,
    "conversations.info": SlackApiDouble._conversations_info,
    "conversations.members": SlackApiDouble._conversations_members,
    "chat.postMessage": SlackApiDouble._chat_post_message,
    "chat.update": SlackApiDouble._chat_update,
    "chat.postEphemeral": SlackApiDouble._chat_post_ephemeral,
    "chat.delete": SlackApiDouble._chat_delete,
    "chat.startStream": SlackApiDouble._chat_start_stream,
    "chat.appendStream": SlackApiDouble._chat_append_stream,
    "chat.stopStream": SlackApiDouble._chat_stop_stream,
    "assistant.threads.setStatus": SlackApiDouble._assistant_set_status,
    "assistant.threads.setSuggestedPrompts": SlackApiDouble._assistant_set_suggested_prompts,
    "reactions.add": SlackApiDouble._reactions_add,
}


# -- requests INTO the service, signed as Slack signs them ---------------------------------


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256(secret, ``v0:{timestamp}:{body}``)."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    content_type: str = "application/json",
    retry_num: int | None = None,
    retry_reason: str | None = None,
) -> dict[str, str]:
    """Headers Slack sends with an Events API / interactivity request. Use
    ``content_type="application/x-www-form-urlencoded"`` with :func:`block_action` bodies."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
    if retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def event_payload(
    event: dict,
    *,
    event_id: str,
    team_id: str = "T0HARBOR1",
    api_app_id: str = "A1",
    enterprise_id: str | None = None,
    bot_user_id: str = "UBOT",
    is_enterprise_install: bool = False,
    is_ext_shared_channel: bool = False,
) -> dict:
    """The Events API ``event_callback`` envelope around ``event``. With
    ``is_enterprise_install`` the event is for an org-wide install: ``team_id`` is still the
    workspace the event happened in, ``authorizations[0]`` names the org."""
    return {
        "token": "verification-token-unused",
        "team_id": team_id,
        "enterprise_id": enterprise_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": is_enterprise_install,
            }
        ],
        "is_ext_shared_channel": is_ext_shared_channel,
    }


def app_mention(
    text: str, *, user: str, channel: str, ts: str, thread_ts: str | None = None
) -> dict:
    """An ``app_mention`` event (``text`` should contain ``<@UBOT>`` as Slack's does)."""
    event = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def dm_message(text: str, *, user: str, channel: str, ts: str) -> dict:
    """A ``message`` event in a DM with the bot (``channel_type`` ``"im"``)."""
    return {
        "type": "message",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }


def assistant_thread_started(
    *, user: str, channel: str, thread_ts: str, context_channel: str | None = None
) -> dict:
    """An ``assistant_thread_started`` event: someone opened the app's assistant view (a DM
    thread), possibly from another channel (``context``)."""
    context: dict[str, Any] = {}
    if context_channel:
        context = {"channel_id": context_channel, "team_id": "T0HARBOR1", "enterprise_id": None}
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel,
            "thread_ts": thread_ts,
        },
        "event_ts": thread_ts,
    }


def block_action(
    action_id: str,
    value: str,
    *,
    user: str,
    channel: str,
    message_ts: str,
    thread_ts: str | None = None,
    team_id: str = "T0HARBOR1",
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
    element_type: str = "button",
) -> bytes:
    """A ``block_actions`` interactivity body as Slack posts it: ``payload=<urlencoded JSON>``
    (sign it with ``content_type="application/x-www-form-urlencoded"``). A click on Slack's
    feedback buttons is ``element_type="feedback_buttons"`` with the chosen button's value."""
    message: dict[str, Any] = {"type": "message", "ts": message_ts}
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
        container["thread_ts"] = thread_ts
    element: dict[str, Any] = {
        "action_id": action_id,
        "block_id": "b",
        "value": value,
        "type": element_type,
        "action_ts": f"{time.time():.6f}",
    }
    payload = {
        "type": "block_actions",
        "user": {"id": user, "team_id": team_id},
        "api_app_id": "A1",
        "token": "verification-token-unused",
        "team": {"id": team_id},
        "enterprise": {"id": enterprise_id} if enterprise_id else None,
        "is_enterprise_install": is_enterprise_install,
        "channel": {"id": channel},
        "message": message,
        "container": container,
        "actions": [element],
        "response_url": f"https://hooks.slack.com/actions/{team_id}/1/response",
        "trigger_id": "t",
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
