"""The console's web plumbing: logins, sessions, CSRF, audit, templates. Pages live in
`bot/console/pages.py`; every page goes through `page()`/`action()`, which refuse anyone
without a session (a redirect to the login page for a page, 401 for an action) and, for
actions, a request without the session's CSRF token (403)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import structlog
from aiohttp import web
from multidict import MultiDictProxy

from adapters.db.admin import AdminStore
from adapters.tickets.signing import same
from bot.console.auth import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Signer,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)
from bot.wiring import Services

log = structlog.get_logger()
HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = {
    # No script at all, nothing from another origin: the console works offline.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Session:
    admin: str
    csrf: str
    token_hash: str


class Console:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.admin
        self.store = AdminStore(services.engine)
        self.signer = Signer(b"")
        self.login_configured = False
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
        )

    async def start(self) -> None:
        """Store the environment's login (its hash) and load the signing key."""
        cfg = self.settings
        if cfg.user:
            if cfg.password_hash is not None:  # the settings checked its form
                stored = cfg.password_hash.get_secret_value()
            else:
                assert cfg.password is not None  # the settings refuse a user without one
                stored = await asyncio.to_thread(hash_password, cfg.password.get_secret_value())
            await self.store.set_user(cfg.user, stored, "env")
        await self.store.remove_users("env", keep=cfg.user)
        secret = cfg.session_secret
        key = secret.get_secret_value() if secret else await self.store.key("session")
        self.signer = Signer(key.encode())
        self.login_configured = await self.store.has_users()

    # --- sessions ----------------------------------------------------------------------

    async def session_of(self, request: web.Request) -> Session | None:
        token = self.signer.unsign(request.cookies.get(SESSION_COOKIE))
        if token is None:
            return None
        hashed = token_hash(token)
        found = await self.store.session(hashed)
        return Session(found[0], found[1], hashed) if found else None

    def client(self, request: web.Request) -> str:
        return request.remote or "unknown"

    async def audit(
        self,
        request: web.Request,
        admin: str,
        action: str,
        target: str | None = None,
        **detail: Any,
    ) -> None:
        await self.store.audit(admin, action, self.client(request), target, detail)
        log.info("console action", admin=admin, action=action, target=target)

    # --- rendering ---------------------------------------------------------------------

    def render(
        self,
        template: str,
        session: Session | None,
        status: int = 200,
        **context: Any,
    ) -> web.Response:
        html = self.templates.get_template(template).render(
            admin=session.admin if session else None,
            csrf=session.csrf if session else "",
            **context,
        )
        return web.Response(
            text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS
        )

    def set_cookie(self, response: web.StreamResponse, name: str, value: str, age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookie,
        )


CONSOLE = web.AppKey("console", Console)
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


def page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page: without a session, a redirect to the login page (and back afterwards)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE]
        session = await console.session_of(request)
        if session is None:
            target = quote(request.path_qs, safe="")
            raise web.HTTPFound(f"/admin/login?next={target}")
        return await handler(request, session)

    return guarded


def action(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A form post: needs a session (401) and that session's CSRF token (403)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE]
        session = await console.session_of(request)
        if session is None:
            return web.json_response({"error": "log in first"}, status=401)
        form = await read_form(request)
        if form is None:
            return _malformed()
        given = str(form.get("csrf", ""))
        if not given or not same(given, session.csrf):
            return web.json_response({"error": "missing or invalid CSRF token"}, status=403)
        return await handler(request, session)

    return guarded


async def read_form(request: web.Request) -> MultiDictProxy[Any] | None:
    """The posted form (kept by the request for the handler), or None when the body is not
    a form that can be read: not UTF-8, broken multipart, a field without a name."""
    try:
        return await request.post()
    except (ValueError, AssertionError):  # UnicodeDecodeError is a ValueError
        return None


def _malformed() -> web.Response:
    return web.json_response({"error": "malformed form body"}, status=400)


def safe_next(target: str | None) -> str:
    """Only a console path: never an open redirect."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin"


async def login_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if await console.session_of(request) is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    return _login_form(console, request.query.get("next"), None, 200)


def _login_form(console: Console, target: str | None, error: str | None, status: int) -> Any:
    nonce = new_token()
    response = console.render(
        "login.html",
        None,
        status=status,
        next=safe_next(target),
        login_csrf=console.signer.login_csrf(nonce),
        error=error,
        configured=console.login_configured,
    )
    console.set_cookie(response, LOGIN_COOKIE, nonce, 3600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    cfg = console.settings
    form = await read_form(request)
    if form is None:
        return _malformed()
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    given = str(form.get("csrf", ""))
    if not nonce or not same(given, console.signer.login_csrf(nonce)):
        return web.json_response({"error": "missing or invalid CSRF token"}, status=403)
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = str(form.get("next", ""))
    client = console.client(request)
    refused = await console.store.refused_recently(name, client, cfg.login_window_s)
    if refused >= cfg.login_max_failures:
        await console.store.audit(name or "-", "login_rate_limited", client)
        minutes = max(1, cfg.login_window_s // 60)
        return _login_form(
            console,
            target,
            f"Too many failed logins. Try again in {minutes} minutes.",
            429,
        )
    stored = await console.store.password_hash(name)
    if not await asyncio.to_thread(verify_password, password, stored):
        await console.store.refuse(name, client, cfg.login_window_s)
        await console.store.audit(name or "-", "login_failed", client)
        return _login_form(console, target, "Wrong name or password.", 401)
    token = new_token()
    csrf = new_token()
    await console.store.open_session(token_hash(token), name, csrf, cfg.session_ttl_s)
    await console.store.audit(name, "login", client)
    response = web.HTTPFound(safe_next(target))
    console.set_cookie(response, SESSION_COOKIE, console.signer.sign(token), cfg.session_ttl_s)
    response.del_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    raise response


@action
async def logout(request: web.Request, session: Session) -> web.StreamResponse:
    console = request.app[CONSOLE]
    await console.store.close_session(session.token_hash)
    await console.audit(request, session.admin, "logout")
    response = web.HTTPFound("/admin/login")
    response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    raise response


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name != "console.css":
        raise web.HTTPNotFound()
    return web.FileResponse(HERE / "static" / name, headers={"Cache-Control": "max-age=3600"})
