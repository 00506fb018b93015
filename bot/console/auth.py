"""Console authentication: scrypt password hashes, signed session cookies backed by a
server-side session (so logout and expiry are real), CSRF tokens, login rate limiting.

- Passwords are stored only as `scrypt$N$r$p$salt$hash` (hashlib.scrypt, N=2^14, r=8).
- The session cookie carries a random token and its HMAC-SHA256 under the signing key; the
  database keeps the token's SHA-256, never the token. The cookie is HttpOnly,
  SameSite=Strict, Path=/ (and Secure with `admin.secure_cookie`).
- Every form carries a CSRF token: the session's own, or before login an HMAC of a random
  nonce held in a separate short-lived cookie.
- Refused logins are counted per name and per client address in the database; beyond
  `admin.login_max_failures` within `admin.login_window_s`, logins are refused outright
  (429) until the window passes, whatever the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "answerdesk_session"
LOGIN_COOKIE = "answerdesk_login"
COOKIE_PATH = "/"  # the console and /metrics (which a console session may read)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check; a missing or malformed hash still costs one scrypt, so the time
    taken does not tell whether the name exists."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        params = {"n": int(n), "r": int(r), "p": int(p)}
        expected = _unb64(digest)
        salt_bytes = _unb64(salt)
    except ValueError:
        params, expected, salt_bytes = dict(_SCRYPT), b"\0" * 32, b"\0" * 16
        stored = None
    actual = hashlib.scrypt(
        password.encode(), salt=salt_bytes, dklen=len(expected), maxmem=64 * 1024 * 1024, **params
    )
    return hmac.compare_digest(actual, expected) and stored is not None


@dataclass(frozen=True, slots=True)
class Signer:
    key: bytes

    def sign(self, value: str) -> str:
        return f"{value}.{self._mac(value)}"

    def unsign(self, signed: str | None) -> str | None:
        value, _, mac = (signed or "").rpartition(".")
        if not value or not _same(mac, self._mac(value)):
            return None
        return value

    def login_csrf(self, nonce: str) -> str:
        return self._mac(f"login:{nonce}")

    def _mac(self, value: str) -> str:
        return _b64(hmac.new(self.key, value.encode(), hashlib.sha256).digest())


def _same(given: str, expected: str) -> bool:
    """Constant-time; a cookie's undecodable bytes or non-ASCII text never raise."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
