"""The Slack Web API client every part of the adapter uses."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient


def web_client(
    token: str | None,
    base_url: str,
    logger: logging.Logger | None = None,
    *,
    team_id: str | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """A Web API client on ``slack.api_base_url``. Bolt copies it for every request (with
    the installation's token in multi-workspace mode), so its settings apply to all calls.
    ``team_id`` names the workspace on every call, as Bolt's per-request clients do. With
    ``session`` (the service's), calls reuse its connections: without one, slack_sdk opens
    a new session and connection per call, several per answer."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        logger=logger,
        team_id=team_id,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
