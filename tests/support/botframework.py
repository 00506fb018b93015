"""A local Bot Framework: the protocol double for Teams, plus helpers that sign activities
INTO the service exactly as the Bot Framework does.

One server plays every Microsoft endpoint the bot talks to:

- OpenID metadata (``GET /v1/.well-known/openidconfiguration``) and its JWKS
  (``GET /v1/.well-known/keys``): the keys inbound activity tokens are signed with, each
  endorsed for the ``msteams`` channel. Point ``teams.openid_metadata_url`` at
  :attr:`BotFrameworkDouble.metadata_url`.
- The token endpoint (``POST /<tenant>/oauth2/v2.0/token``, OAuth 2 client credentials
  with ``client_id``/``client_secret``/``scope`` in a form body): issues the bot's outbound
  bearer tokens. Point ``teams.token_url`` at :attr:`BotFrameworkDouble.token_url`.
- The connector at ``serviceUrl`` (:attr:`BotFrameworkDouble.service_url`), every call
  refused with 401 unless it carries a bearer token the token endpoint issued:
  ``POST /v3/conversations/{id}/activities`` (send), ``POST …/activities/{replyToId}``
  (reply), ``PUT …/activities/{id}`` (update), ``GET /v3/conversations/{id}/members``,
  ``GET …/members/{memberId}`` (404 ``MemberNotFoundInConversation`` when unknown),
  ``GET /v3/conversations/{id}/pagedmembers?pageSize=&continuationToken=`` — pages hold at
  most :attr:`BotFrameworkDouble.max_page` members, so paging is always exercised — and
  ``POST /v3/conversations`` (create a conversation: Teams accepts a 1:1 chat of the bot
  with one member, ``isGroup: false``, and answers with the chat's id, the same for the same
  member every time; recorded in :attr:`BotFrameworkDouble.created`).

Teams' streaming protocol is enforced as Teams does (1:1 chats only): a ``typing`` activity
with a ``streaminfo`` entity starts a stream (``streamSequence`` 1, no ``streamId``; the
answer's ``id`` is the stream id) unless one is already open in that conversation (403
``ContentStreamNotAllowed``); later updates name the stream id, with increasing sequence
numbers; ``informative`` only before the first ``streaming`` update; each ``streaming``
text must extend the previous one; a ``message`` with ``streamType: final`` closes it.
Anything else is answered 400 and recorded in :attr:`BotFrameworkDouble.violations`.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.threaded import ThreadedServer

ISSUER = "https://api.botframework.com"
KEY_ID = "answerdesk-test-key"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class BotFrameworkDouble(ThreadedServer):
    def __init__(
        self,
        app_id: str,
        app_password: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_page: int = 2,
    ) -> None:
        self.host, self.port = host, port
        self.app_id, self.app_password = app_id, app_password
        self.max_page = max_page
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.issued: set[str] = set()
        self.calls: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.rosters: dict[str, list[dict[str, Any]]] = {}
        self._streams: dict[str, dict[str, Any]] = {}  # conversation → open stream
        self.created: list[dict[str, Any]] = []  # conversations the bot created

    # --- set-up and inspection -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    @property
    def token_url(self) -> str:
        return f"{self.url}/botframework.com/oauth2/v2.0/token"

    @property
    def service_url(self) -> str:
        return f"{self.url}/teams/"  # Teams' service URLs end with a slash

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.violations.clear()
            self.rosters.clear()
            self._streams.clear()
            self.created.clear()

    def add_roster(self, conversation_id: str, members: list[dict[str, Any]]) -> None:
        self.rosters[conversation_id] = members

    def sent(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Activities the bot sent (send, reply or update), oldest first."""
        return [
            call
            for call in list(self.calls)
            if call.get("activity") is not None
            and (conversation_id is None or call["conversation_id"] == conversation_id)
        ]

    def sign(
        self,
        *,
        service_url: str | None = None,
        audience: str | None = None,
        issuer: str = ISSUER,
        expires_in: float = 3600,
        key: rsa.RSAPrivateKey | None = None,
        key_id: str = KEY_ID,
    ) -> str:
        """An inbound activity token as the Bot Framework signs it."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience or self.app_id,
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + int(expires_in),
            "serviceurl": service_url or self.service_url,
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": key_id})

    # --- the server ---------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/teams/v3/conversations", self._create)
        base = "/teams/v3/conversations/{conversation}"
        app.router.add_post(base + "/activities", self._send)
        app.router.add_post(base + "/activities/{activity}", self._send)
        app.router.add_put(base + "/activities/{activity}", self._update)
        app.router.add_get(base + "/members", self._members)
        app.router.add_get(base + "/members/{member}", self._member)
        app.router.add_get(base + "/pagedmembers", self._paged)
        return app

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": ISSUER,
                "authorization_endpoint": f"{self.url}/v1/authorize",
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        numbers = self.key.public_key().public_numbers()
        key = {
            "kty": "RSA",
            "use": "sig",
            "kid": KEY_ID,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
            "endorsements": ["msteams"],
        }
        return web.json_response({"keys": [key]})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests.append({k: str(v) for k, v in form.items() if k != "client_secret"})
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_password:
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("scope") != f"{ISSUER}/.default":
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"bf-out-{uuid.uuid4().hex}"
        self.issued.add(token)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "access_token": token}
        )

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[len("Bearer ") :] in self.issued

    def _record(self, request: web.Request, activity: Any = None) -> dict[str, Any]:
        call = {
            "method": request.method,
            "path": request.path,
            "conversation_id": request.match_info.get("conversation"),
            "reply_to": request.match_info.get("activity") if request.method == "POST" else None,
            "activity": activity,
            "at": time.monotonic(),
        }
        self.calls.append(call)
        return call

    def _unauthorized(self) -> web.Response:
        return web.json_response(
            {"error": {"code": "Unauthorized", "message": "Authorization has been denied"}},
            status=401,
        )

    async def _send(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        activity = await request.json()
        conversation = request.match_info["conversation"]
        with self._lock:
            problem, new_id = self._check_stream(conversation, activity)
            if problem:
                self.violations.append(problem)
                code = "ContentStreamNotAllowed" if "already open" in problem else "BadArgument"
                status = 403 if code == "ContentStreamNotAllowed" else 400
                return web.json_response(
                    {"error": {"code": code, "message": problem}}, status=status
                )
            call = self._record(request, activity)
            call["id"] = new_id
        return web.json_response({"id": new_id}, status=201)

    def _check_stream(self, conversation: str, activity: dict[str, Any]) -> tuple[str | None, str]:
        info = next(
            (e for e in activity.get("entities") or [] if e.get("type") == "streaminfo"), None
        )
        new_id = str(next(self._ids))
        if info is None:
            return None, new_id
        open_stream = self._streams.get(conversation)
        kind = info.get("streamType")
        if kind == "final":
            if activity.get("type") != "message":
                return "a final stream update must be a message", new_id
            if open_stream is None or info.get("streamId") != open_stream["id"]:
                return "final for a stream that is not open", new_id
            del self._streams[conversation]
            return None, open_stream["id"]
        if activity.get("type") != "typing" or kind not in ("informative", "streaming"):
            return f"bad stream update {activity.get('type')}/{kind}", new_id
        sequence = info.get("streamSequence")
        if not isinstance(sequence, int):
            return "streamSequence missing", new_id
        if info.get("streamId") is None:
            if open_stream is not None:
                return "a stream is already open in this conversation", new_id
            if sequence != 1:
                return "a stream starts at streamSequence 1", new_id
            self._streams[conversation] = {"id": new_id, "sequence": 1, "text": "", "kind": kind}
            if kind == "streaming":
                self._streams[conversation]["text"] = activity.get("text") or ""
            return None, new_id
        if open_stream is None or info["streamId"] != open_stream["id"]:
            return "update for a stream that is not open", new_id
        if sequence <= open_stream["sequence"]:
            return "streamSequence must increase", new_id
        if kind == "informative" and open_stream["kind"] == "streaming":
            return "informative update after streaming started", new_id
        text = activity.get("text") or ""
        if kind == "streaming":
            if not text.startswith(open_stream["text"]):
                return "streamed text must extend what was streamed before", new_id
            open_stream["text"] = text
        open_stream.update(sequence=sequence, kind=kind)
        return None, open_stream["id"]

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        parameters = await request.json()
        members = parameters.get("members") or []
        tenant = parameters.get("tenantId") or (
            (parameters.get("channelData") or {}).get("tenant") or {}
        ).get("id")
        if parameters.get("isGroup") or len(members) != 1 or not members[0].get("id"):
            problem = "Teams creates 1:1 chats: isGroup false and exactly one member"
        elif not tenant or not (parameters.get("bot") or {}).get("id"):
            problem = "the tenant and the bot are required"
        else:
            problem = None
        if problem:
            self.violations.append(problem)
            return web.json_response(
                {"error": {"code": "BadArgument", "message": problem}}, status=400
            )
        conversation = f"a:1on1-{members[0]['id']}"
        self.created.append({"id": conversation, "parameters": parameters})
        return web.json_response({"id": conversation}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        activity = await request.json()
        self._record(request, activity)
        return web.json_response({"id": request.match_info["activity"]})

    def _roster(self, request: web.Request) -> list[dict[str, Any]] | None:
        return self.rosters.get(request.match_info["conversation"])

    async def _members(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        self._record(request)
        return web.json_response(self._roster(request) or [])

    async def _member(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        self._record(request)
        wanted = request.match_info["member"]
        for member in self._roster(request) or []:
            if wanted in (member.get("id"), member.get("aadObjectId")):
                return web.json_response(member)
        error = {"code": "MemberNotFoundInConversation", "message": "The member was not found"}
        return web.json_response({"error": error}, status=404)

    async def _paged(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        self._record(request)
        roster = self._roster(request) or []
        size = min(int(request.query.get("pageSize") or self.max_page), self.max_page)
        start = int(request.query.get("continuationToken") or 0)
        page = roster[start : start + size]
        body: dict[str, Any] = {"members": page}
        if start + size < len(roster):
            body["continuationToken"] = str(start + size)
        return web.json_response(body)


# --- activities as Teams sends them ---------------------------------------------------


def member(user_id: str, aad: str | None, email: str | None, name: str = "") -> dict[str, Any]:
    """A roster entry (TeamsChannelAccount)."""
    entry: dict[str, Any] = {"id": user_id, "name": name or user_id}
    if aad:
        entry["aadObjectId"] = aad
    if email:
        entry.update(email=email, userPrincipalName=email)
    return entry


def message(
    text: str,
    *,
    service_url: str,
    conversation_id: str,
    conversation_type: str,
    user: dict[str, Any],
    tenant_id: str,
    bot_id: str,
    activity_id: str | None = None,
    mention: bool = False,
    team_id: str | None = None,
    value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A message activity as Teams posts it to the bot (with `<at>` mention when asked)."""
    entities: list[dict[str, Any]] = [{"type": "clientInfo", "locale": "en-US"}]
    if mention:
        tag = "<at>Answerdesk</at>"
        text = f"{tag} {text}"
        entities.append(
            {"type": "mention", "text": tag, "mentioned": {"id": bot_id, "name": "Answerdesk"}}
        )
    channel_data: dict[str, Any] = {"tenant": {"id": tenant_id}}
    if team_id:
        channel_data["team"] = {"id": team_id}
        channel_data["channel"] = {"id": conversation_id.split(";")[0]}
    activity: dict[str, Any] = {
        "type": "message",
        "id": activity_id or f"1{uuid.uuid4().int % 10**12:012d}",
        "timestamp": "2026-12-09T10:00:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {k: v for k, v in user.items() if k in ("id", "name", "aadObjectId")},
        "conversation": {
            "id": conversation_id,
            "conversationType": conversation_type,
            "tenantId": tenant_id,
            "isGroup": conversation_type != "personal",
        },
        "recipient": {"id": bot_id, "name": "Answerdesk"},
        "textFormat": "plain",
        "text": text,
        "entities": entities,
        "channelData": channel_data,
        "locale": "en-US",
    }
    if value is not None:
        activity["value"] = value
        activity["text"] = ""
    return activity
