"""HTTP for ticket systems (aiohttp): one session per system, and the outcome of every call
in the handoff's terms: a 2xx is the answer; a 429 is a DeliveryError that carries the
system's Retry-After; a timeout, a refused connection or a 5xx is a DeliveryError to retry;
another 4xx is a permanent one (the request itself is wrong: credentials, project, fields).
Errors name the method, the URL's path and the status; never a credential."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from core.handoff.types import DeliveryError

_RETRYABLE_4XX = {408, 409, 425}
USER_AGENT = "Answerdesk/0.1 (+handoff)"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class TicketHttp:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def call(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: bytes | dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
    ) -> Any:
        """The decoded JSON answer (None when empty), or a DeliveryError."""
        where = f"{method} {urlsplit(url).path}"
        try:
            async with self._client().request(
                method,
                url,
                json=json_body,
                data=data,
                params=params,
                headers={"Accept": "application/json", **(headers or {})},
                auth=auth,
            ) as response:
                status = response.status
                body = await response.read()
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}") from None
        if status == 429:
            raise DeliveryError(
                f"{where}: HTTP 429 (rate limited)", retry_after=retry_after_seconds(retry_after)
            )
        if status >= 500 or status in _RETRYABLE_4XX:
            raise DeliveryError(f"{where}: HTTP {status}")
        if status >= 400:
            detail = body[:200].decode("utf-8", "replace").strip()
            raise DeliveryError(f"{where}: HTTP {status} {detail}".strip(), permanent=True)
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise DeliveryError(f"{where}: the answer is not JSON", permanent=True) from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def answer_field(answer: Any, *path: str) -> Any:
    """``answer[path…]``, or a permanent DeliveryError naming what is missing (a system that
    answers 2xx without the ticket's key must be looked at, not hammered)."""
    value = answer
    for name in path:
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict) or value.get(name) in (None, ""):
            raise DeliveryError(f"the answer has no {'.'.join(path)}", permanent=True)
        value = value[name]
    return value


def require(*credentials: tuple[str | None, str]) -> None:
    """Each (value, its variable): a permanent DeliveryError naming the variables not set
    (the delivery counts as failing until they are; it is never dropped)."""
    missing = [variable for value, variable in credentials if not value]
    if missing:
        raise DeliveryError(f"{', '.join(missing)} not set", permanent=True)
