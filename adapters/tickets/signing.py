"""Request signatures: ours (sent with webhook tickets, checked on the loop-back) and the
ticket systems' (checked on the loop-back). Every comparison is constant-time.

Ours — headers ``X-Answerdesk-Timestamp: <unix seconds>`` and ``X-Answerdesk-Signature:
v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``; a receiver recomputes it over the
raw body and rejects a request whose timestamp is more than 5 minutes away from its clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import datetime

TIMESTAMP_HEADER = "X-Answerdesk-Timestamp"
SIGNATURE_HEADER = "X-Answerdesk-Signature"
TOLERANCE_S = 300
_DIGITS = re.compile(r"[0-9]{1,12}")  # str.isdigit() also accepts "²", which int() refuses


def _fresh(timestamp: float, now: float | None, tolerance_s: int) -> bool:
    """Not older (or further ahead) than the tolerance: a replayed request is refused."""
    return abs((time.time() if now is None else now) - timestamp) <= tolerance_s


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def same(given: str, expected: str) -> bool:
    """Constant-time equality of a value from a request (any characters, undecodable bytes
    included, as aiohttp keeps them) and the expected one; never raises."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers that sign ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = _hmac(secret, ts.encode() + b"." + body).hex()
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"v1={digest}"}


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "").removeprefix("v1=")
    if not _DIGITS.fullmatch(timestamp) or not given:
        return False
    if not _fresh(int(timestamp), now, tolerance_s):
        return False
    expected = _hmac(secret, timestamp.encode() + b"." + body).hex()
    return same(given, expected)


def verify_hub_signature(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Jira Cloud admin webhooks with a secret: ``X-Hub-Signature: sha256=<hex HMAC of the
    raw body>`` (WebSub)."""
    method, _, given = headers.get("X-Hub-Signature", "").partition("=")
    if method != "sha256" or not given:
        return False
    return same(given.lower(), _hmac(secret, body).hex())


def verify_zendesk(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """Zendesk webhooks: ``X-Zendesk-Webhook-Signature: base64(HMAC-SHA256(timestamp +
    body))`` with ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601); we also reject a
    timestamp more than 5 minutes away (replays)."""
    timestamp = headers.get("X-Zendesk-Webhook-Signature-Timestamp", "")
    given = headers.get("X-Zendesk-Webhook-Signature", "")
    if not timestamp or not given:
        return False
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    if not _fresh(when, now, tolerance_s):
        return False
    expected = base64.b64encode(_hmac(secret, timestamp.encode() + body)).decode()
    return same(given, expected)


def verify_bearer(secret: str, headers: Mapping[str, str]) -> bool:
    """A shared secret sent as ``Authorization: Bearer <secret>`` (ServiceNow's REST
    message from a business rule)."""
    given = headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return False
    return same(given.removeprefix("Bearer ").strip(), secret)
