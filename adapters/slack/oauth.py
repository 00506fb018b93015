"""Multi-workspace Slack: Bolt's OAuth flow and installation-based authorize, on our database.

- The scopes requested are the manifest's bot scopes (manifest/slack.yaml): one list.
- slack_sdk's async SQLAlchemy installation and OAuth state stores use the service's engine
  (tables from migration 0005), so any replica can finish an install another one started
  and every replica sees every installation.
- ``GET /slack/install`` issues a state (stored, single use, expiring) and redirects to
  Slack's authorize URL with it, setting the state cookie Bolt checks on the way back;
  ``GET /slack/oauth_redirect`` exchanges the code (oauth.v2.access through the service's
  Web API client, so ``slack.api_base_url`` applies) and stores the installation.
- Each event is authorized from the stored installations: a workspace's own install, or for
  an event from any workspace of an Enterprise Grid org, the org-wide install.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.authorization.authorize_result import AuthorizeResult
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

import manifest

log = structlog.get_logger()
MANIFEST = Path(manifest.__file__).resolve().parent / "slack.yaml"  # package data


class ManifestError(ValueError):
    """The Slack manifest cannot give the bot scopes."""


def manifest_bot_scopes(path: Path = MANIFEST) -> tuple[str, ...]:
    try:
        scopes = yaml.safe_load(path.read_text())["oauth_config"]["scopes"]["bot"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ManifestError(f"cannot read the bot scopes from {path}: {exc}") from None
    if not scopes or not all(isinstance(s, str) and s for s in scopes):
        raise ManifestError(f"{path}: oauth_config.scopes.bot must be a list of scopes")
    return tuple(scopes)


@dataclass(frozen=True, slots=True)
class OAuthConfig:
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    authorize_url: str
    redirect_url: str | None
    state_ttl_s: int


class InstallationAuthorize(AsyncInstallationStoreAuthorize):
    """Bolt's authorize from the installation store, saying so in our log when an event or
    click comes from a workspace (or org) with no usable installation."""

    async def __call__(  # type: ignore[override]
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **actor: Any,
    ) -> AuthorizeResult | None:
        result = await super().__call__(
            context=context,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            **actor,
        )
        if result is None:
            log.warning(
                "slack request from a workspace without an installation",
                team_id=team_id,
                enterprise_id=enterprise_id,
                org_wide=bool(context.is_enterprise_install),
            )
        return result


@dataclass(frozen=True, slots=True)
class Installations:
    """What Bolt's AsyncApp takes to run for many workspaces."""

    settings: AsyncOAuthSettings
    authorize: InstallationAuthorize
    store: AsyncSQLAlchemyInstallationStore

    async def forget(self, context: AsyncBoltContext, *, bot_only: bool) -> None:
        """Delete the installation an `app_uninstalled` (everything) or `tokens_revoked`
        (the bot) event is about: the workspace's, or for an org-wide install the org's.
        Its events are then dropped like those of any workspace without an installation."""
        org_wide = bool(context.is_enterprise_install)
        where = {
            "enterprise_id": context.enterprise_id,
            "team_id": None if org_wide else context.team_id,  # an org install has no team
        }
        if bot_only:
            await self.store.async_delete_bot(**where)
        else:
            await self.store.async_delete_all(**where)
        log.info(
            "slack bot token revoked" if bot_only else "slack installation removed",
            team_id=context.team_id,
            enterprise_id=context.enterprise_id,
            org_wide=org_wide,
        )


def installation_store(
    client_id: str, engine: AsyncEngine, logger: logging.Logger
) -> AsyncSQLAlchemyInstallationStore:
    """The installations of the app ``client_id`` (tables from migration 0005)."""
    return AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine, logger=logger)


def installations(
    config: OAuthConfig, engine: AsyncEngine, client: AsyncWebClient, logger: logging.Logger
) -> Installations:
    store = installation_store(config.client_id, engine, logger)
    states = AsyncSQLAlchemyOAuthStateStore(
        expiration_seconds=config.state_ttl_s, engine=engine, logger=logger
    )
    settings = AsyncOAuthSettings(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scopes=list(config.scopes),
        user_scopes=[],  # a bot: no user tokens
        redirect_uri=config.redirect_url,
        install_page_rendering_enabled=False,  # straight to Slack, no intermediate page
        authorization_url=config.authorize_url,
        installation_store=store,
        state_store=states,
        state_expiration_seconds=config.state_ttl_s,
        callback_options=AsyncCallbackOptions(success=_installed, failure=_install_failed),
        logger=logger,
    )
    authorize = InstallationAuthorize(
        logger=logger,
        installation_store=store,
        client_id=config.client_id,
        client_secret=config.client_secret,  # for token rotation, if the app turns it on
        client=client,  # rotation's oauth.v2.access goes to slack.api_base_url too
    )
    return Installations(settings, authorize, store)


async def _installed(args: AsyncSuccessArgs) -> BoltResponse:
    installation = args.installation
    log.info(
        "slack app installed",
        team_id=installation.team_id,
        enterprise_id=installation.enterprise_id,
        org_wide=installation.is_enterprise_install,
        installer=installation.user_id,
    )
    return await args.default.success(args)


async def _install_failed(args: AsyncFailureArgs) -> BoltResponse:
    log.warning(
        "slack app install failed",
        reason=args.reason,
        status=args.suggested_status_code,
        error=type(args.error).__name__ if args.error else None,
    )
    return await args.default.failure(args)


class InstallPages:
    """``GET /slack/install`` and ``GET /slack/oauth_redirect``: Bolt's OAuth flow behind the
    service's aiohttp routes. Failures are Bolt's HTML error page (4xx, the reason named)."""

    def __init__(self, flow: AsyncOAuthFlow) -> None:
        self._flow = flow

    async def handle(self, request: web.Request) -> web.StreamResponse:
        bolt_request = await to_bolt_request(request)
        try:
            if request.path == self._flow.install_path:
                response = await self._flow.handle_installation(bolt_request)
            elif request.path == self._flow.redirect_uri_path:
                response = await self._flow.handle_callback(bolt_request)
            else:
                return web.json_response({"error": "not an OAuth page"}, status=404)
        except Exception as exc:  # the database or Slack unreachable: say so, plainly
            log.error("slack install page failed", path=request.path, error=type(exc).__name__)
            return web.Response(
                status=503,
                content_type="text/html",
                text="<html><body><h2>Installation is unavailable right now</h2>"
                "<p>Please try again in a few minutes.</p></body></html>",
            )
        return await to_aiohttp_response(response)
