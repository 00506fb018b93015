"""The Bot Framework SDK (botbuilder-python) behind `adapters/teams/ports.py`.

The only module that imports botbuilder. Microsoft has archived botbuilder-python in favour
of the Microsoft 365 Agents SDK (`microsoft-agents-*`); moving means rewriting this module
against the same small interface (README, "Connect to Teams").

- Inbound: botbuilder's own JWT validation, configured with `teams.openid_metadata_url`:
  issuer `https://api.botframework.com`, signing key from the metadata's JWKS (endorsed for
  the activity's channel), audience = our app id, expiry (botbuilder allows 5 minutes of
  clock skew), and the `serviceurl` claim equal to the activity's `serviceUrl`. botbuilder
  fetches the metadata with blocking `requests` calls, so validation runs in a worker
  thread; every failure (botbuilder raises several kinds) becomes AuthenticationFailed.
- Outbound: a client-credentials token from `teams.token_url` (scope
  `https://api.botframework.com/.default`), cached until shortly before it expires and
  fetched off the event loop before each turn, so botbuilder's synchronous credential hook
  never waits on the network.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ConversationParameters,
    ConversationReference,
    Entity,
)
from botframework.connector.auth import (
    AppCredentials,
    AuthenticationConfiguration,
    BotFrameworkAuthenticationFactory,
    ServiceClientCredentialsFactory,
)

from adapters.teams.ports import (
    AuthenticationFailed,
    InvokeReply,
    MalformedActivity,
    Turn,
    TurnHandler,
)

log = structlog.get_logger()
BOT_FRAMEWORK = "https://api.botframework.com"  # channel tokens' issuer; outbound scope
PAGE_SIZE = 200

# Teams' entities (citations, stream info) carry fields botbuilder's Entity model does not
# declare; without this msrest drops them when an activity is (de)serialised.
Entity.enable_additional_properties_sending()


@dataclass(frozen=True, slots=True)
class BotFrameworkConfig:
    app_id: str
    app_password: str = field(repr=False)  # never in a log line or a traceback's locals
    openid_metadata_url: str
    token_url: str


class ClientCredentialsToken:
    """The bot's outbound bearer token (OAuth 2 client credentials), cached."""

    def __init__(self, config: BotFrameworkConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def get(self) -> str:
        with self._lock:
            if self._token and time.monotonic() < self._expires - 120:
                return self._token
            try:
                response = requests.post(
                    self._config.token_url,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self._config.app_id,
                        "client_secret": self._config.app_password,
                        "scope": f"{BOT_FRAMEWORK}/.default",
                    },
                    timeout=10,
                )
                status = response.status_code
                body = response.json() if status == 200 else None
                if body is not None:
                    token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
            except Exception as exc:
                # Raised without its cause: the request's frames hold the client secret.
                raise PermissionError(f"token endpoint failed ({type(exc).__name__})") from None
            if body is None:
                # The body may echo the request: only the status is reported.
                raise PermissionError(f"token endpoint answered HTTP {status}")
            self._token, self._expires = token, time.monotonic() + lifetime
            return token


class _Credentials(AppCredentials):
    def __init__(self, app_id: str, token: ClientCredentialsToken) -> None:
        super().__init__(app_id=app_id, oauth_scope=BOT_FRAMEWORK)
        self._token = token

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._token.get()


class _CredentialsFactory(ServiceClientCredentialsFactory):
    def __init__(self, app_id: str, token: ClientCredentialsToken) -> None:
        self._app_id = app_id
        self._credentials = _Credentials(app_id, token)

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self._app_id

    async def is_authentication_disabled(self) -> bool:
        return False  # never: an activity without a valid token is refused

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        if app_id != self._app_id:
            raise PermissionError("credentials asked for another app id")
        return self._credentials


class _Turn:
    """ports.Turn over a botbuilder TurnContext."""

    def __init__(self, context: TurnContext, raw: dict[str, Any], proactive: bool) -> None:
        self._context = context
        self._raw = raw
        self._proactive = proactive

    @property
    def activity(self) -> dict[str, Any]:
        return self._raw

    async def send(self, activity: dict[str, Any]) -> str | None:
        outgoing = Activity().deserialize(activity)
        reference = TurnContext.get_conversation_reference(self._context.activity)
        if self._proactive:
            # A continuation has no inbound message to reply to: post into the conversation.
            reference.activity_id = None
        TurnContext.apply_conversation_reference(outgoing, reference)
        responses = await self._context.adapter.send_activities(self._context, [outgoing])
        return responses[0].id if responses and responses[0] else None

    async def update(self, activity_id: str, activity: dict[str, Any]) -> None:
        outgoing = Activity().deserialize(activity)
        TurnContext.apply_conversation_reference(
            outgoing, TurnContext.get_conversation_reference(self._context.activity)
        )
        outgoing.id = activity_id
        await self._context.update_activity(outgoing)

    async def member(self, user_id: str) -> dict[str, Any] | None:
        found = await TeamsInfo.get_member(self._context, user_id)
        return found.serialize() if found else None

    async def members(self) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = []
        token = None
        while True:
            page = await TeamsInfo.get_paged_members(self._context, token, PAGE_SIZE)
            members.extend(member.serialize() for member in page.members or [])
            token = page.continuation_token
            if not token:
                return members


class BotFrameworkTransport:
    """ports.Transport with botbuilder's CloudAdapter."""

    def __init__(self, config: BotFrameworkConfig) -> None:
        self._token = ClientCredentialsToken(config)
        self._app_id = config.app_id
        self._auth = BotFrameworkAuthenticationFactory.create(
            to_channel_from_bot_login_url=config.token_url,
            to_channel_from_bot_oauth_scope=BOT_FRAMEWORK,
            to_bot_from_channel_token_issuer=BOT_FRAMEWORK,
            oauth_url=BOT_FRAMEWORK,
            to_bot_from_channel_open_id_metadata_url=config.openid_metadata_url,
            # Emulator tokens are checked against the same keys, so they never pass.
            to_bot_from_emulator_open_id_metadata_url=config.openid_metadata_url,
            credential_factory=_CredentialsFactory(config.app_id, self._token),
            auth_configuration=AuthenticationConfiguration(),
        )
        self._adapter = CloudAdapter(self._auth)
        self._adapter.on_turn_error = self._on_turn_error

    async def authenticate(self, authorization: str | None, activity: dict[str, Any]) -> object:
        try:
            inbound = Activity().deserialize(activity)
        except Exception as exc:  # msrest/azure-core DeserializationError, on any field
            raise MalformedActivity(f"{type(exc).__name__}") from None
        if not authorization:
            raise AuthenticationFailed("no Authorization header")

        def validate() -> Any:
            return asyncio.run(self._auth.authenticate_request(inbound, authorization))

        try:
            return await asyncio.to_thread(validate)
        except Exception as exc:  # PermissionError, jwt errors, unknown key ids, ...
            raise AuthenticationFailed(f"{type(exc).__name__}: {exc}"[:200]) from None

    async def run_turn(
        self, authenticated: object, activity: dict[str, Any], handler: TurnHandler
    ) -> InvokeReply | None:
        await asyncio.to_thread(self._token.get)
        inbound = Activity().deserialize(activity)

        async def logic(context: TurnContext) -> None:
            reply = await handler(_Turn(context, activity, proactive=False))
            if reply is not None and activity.get("type") == "invoke":
                await context.send_activity(
                    Activity(
                        type="invokeResponse",
                        value=InvokeResponse(status=reply.status, body=reply.body),
                    )
                )

        result = await self._adapter.process_activity(authenticated, inbound, logic)  # type: ignore[arg-type]
        if result is None:
            return None
        return InvokeReply(status=int(result.status), body=result.body)

    async def continue_conversation(
        self, reference: dict[str, Any], handler: Callable[[Turn], Awaitable[None]]
    ) -> None:
        await asyncio.to_thread(self._token.get)

        async def logic(context: TurnContext) -> None:
            await handler(_Turn(context, context.activity.serialize(), proactive=True))

        await self._adapter.continue_conversation(
            ConversationReference().deserialize(reference), logic, self._app_id
        )

    async def create_conversation(
        self,
        service_url: str,
        parameters: dict[str, Any],
        handler: Callable[[Turn], Awaitable[None]],
    ) -> None:
        await asyncio.to_thread(self._token.get)

        async def logic(context: TurnContext) -> None:
            await handler(_Turn(context, context.activity.serialize(), proactive=True))

        await self._adapter.create_conversation(
            self._app_id,
            logic,
            ConversationParameters().deserialize(parameters),
            "msteams",
            service_url,
        )

    async def _on_turn_error(self, context: TurnContext, error: Exception) -> None:
        # Logged with its type only: an SDK error may quote a request, token included.
        log.error("teams turn failed", error=type(error).__name__)
