"""The admin console over real HTTP: every page behind a login from the environment (stored
hashed), signed HttpOnly SameSite cookies, CSRF on every form, login rate limiting, logout,
audit of every action with the admin's name; tickets resolved and replied to."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select, text

from adapters.db.admin import AdminStore
from adapters.db.models import AdminUser
from bot.console.auth import SESSION_COOKIE
from bot.settings import Settings
from bot.wiring import Services
from core.tickets import TicketRequest
from tests.support.cli import run
from tests.support.console import login, page_csrf
from tests.support.service import running

NAME, PASSWORD = "alice", "correct horse battery staple"
PAGES = [
    "/admin",
    "/admin/traces",
    "/admin/tickets",
    "/admin/try",
    "/admin/audit",
    "/admin/launch",
    "/admin/evaluations",
]


@pytest.fixture
async def console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Services]]:
    monkeypatch.setenv("ANSWERDESK_ADMIN_USER", NAME)
    monkeypatch.setenv("ANSWERDESK_ADMIN_PASSWORD", PASSWORD)
    settings = Settings(
        data_dir=tmp_path / "var", admin={"login_max_failures": 3, "login_window_s": 600}
    )
    async with running(settings) as pair:
        yield pair


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_every_page_needs_a_session(console: tuple[str, Services]) -> None:
    url, _ = console
    async with browser() as session:
        for path in [*PAGES, "/admin/traces/abc123"]:
            async with session.get(f"{url}{path}", allow_redirects=False) as response:
                assert response.status == 302, path
                assert response.headers["Location"].startswith("/admin/login?next=")
        for path in ["/admin/tickets/AD-1/resolve", "/admin/tickets/AD-1/reply", "/admin/try"]:
            async with session.post(f"{url}{path}", data={"csrf": "x"}) as response:
                assert response.status == 401, path
                assert "error" in await response.json()
        async with session.get(f"{url}/admin/login") as response:
            assert response.status == 200
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert "<script" not in await response.text()


async def test_login_refusals_and_rate_limit(console: tuple[str, Services]) -> None:
    url, services = console
    async with browser() as session:
        # A login form post without the login page's token is refused.
        no_token = await session.post(
            f"{url}/admin/login", data={"name": NAME, "password": PASSWORD}
        )
        assert no_token.status == 403
        for attempt in range(3):
            refused = await login(session, url, NAME, "wrong password")
            assert refused.status == 401, attempt
            assert "Wrong name or password" in await refused.text()
            assert SESSION_COOKIE not in refused.cookies
        # Three refusals for this name: now even the right password is refused for a while.
        limited = await login(session, url, NAME, PASSWORD)
        assert limited.status == 429
        assert "Too many failed logins" in await limited.text()
        async with session.get(f"{url}/admin", allow_redirects=False) as response:
            assert response.status == 302
    log = await console_audit(services)
    assert [e["action"] for e in log[:4]] == ["login_rate_limited"] + ["login_failed"] * 3
    assert {e["admin"] for e in log[:4]} == {NAME}


async def test_login_session_cookie_csrf_and_logout(console: tuple[str, Services]) -> None:
    url, services = console
    async with browser() as session:
        response = await login(session, url, NAME, PASSWORD, next_page="/admin/tickets")
        assert response.status == 302
        assert response.headers["Location"] == "/admin/tickets"
        cookie = next(
            h for h in response.headers.getall("Set-Cookie") if h.startswith(SESSION_COOKIE)
        )
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        for path in PAGES:
            async with session.get(f"{url}{path}") as page:
                assert page.status == 200, path
                assert NAME in await page.text()

        # An action without the session's CSRF token is refused, with it done.
        ticket = await services.handoff.handoffs.create(_ticket_request("req-csrf-1"))
        path = f"{url}/admin/tickets/{ticket.handoff}/resolve"
        async with session.post(path, data={"note": "x"}) as refused:
            assert refused.status == 403
        async with session.post(path, data={"note": "x", "csrf": "forged"}) as refused:
            assert refused.status == 403
        assert (await services.tickets.for_request("req-csrf-1"))["status"] == "open"
        token = await page_csrf(session, url, "/admin/tickets")
        async with session.post(
            path, data={"note": "VPN profile re-issued", "csrf": token}
        ) as done:
            assert done.status == 200 and "Done: resolved" in await done.text()
        resolved = await services.handoff.desk.show(ticket.handoff)
        assert resolved["status"] == "closed" and resolved["resolution_s"] is not None
        assert resolved["messages"] == []  # asked outside a chat: no thread to post a note in
        async with session.post(path, data={"csrf": token}) as again:
            assert again.status == 409  # already resolved

        # A tampered cookie is no session.
        signed = session.cookie_jar.filter_cookies(url)[SESSION_COOKIE].value
        async with browser() as forger:
            forger.cookie_jar.update_cookies({SESSION_COOKIE: signed[:-2] + "xx"})
            async with forger.get(f"{url}/admin", allow_redirects=False) as response:
                assert response.status == 302

        async with session.post(f"{url}/admin/logout", data={"csrf": token}) as out:
            assert out.status == 200 and "Log in" in await out.text()
        async with session.get(f"{url}/admin", allow_redirects=False) as response:
            assert response.status == 302
    # The old cookie, replayed after logout, is dead: the session is gone server-side.
    async with browser() as replay:
        replay.cookie_jar.update_cookies({SESSION_COOKIE: signed})
        async with replay.get(f"{url}/admin", allow_redirects=False) as response:
            assert response.status == 302
    actions = [(e["action"], e["admin"], e["target"]) for e in await console_audit(services)]
    assert actions[:3] == [
        ("logout", NAME, None),
        ("ticket_resolve", NAME, ticket.id),
        ("login", NAME, None),
    ]


async def test_password_is_stored_hashed(console: tuple[str, Services]) -> None:
    _, services = console
    async with services.engine.connect() as conn:
        stored = (await conn.execute(select(AdminUser.password_hash))).scalar_one()
        dump = " ".join(str(r) for r in (await conn.execute(text("SELECT * FROM admin_users"))))
    assert stored.startswith("scrypt$") and PASSWORD not in dump


async def test_reply_form_validation(console: tuple[str, Services]) -> None:
    """A reply needs text and a built-in ticket that exists; each refusal is a page that says
    why, and nothing is recorded as sent. (A reply reaching a Slack thread: the browser test.)"""
    url, services = console
    ticket = await services.handoff.handoffs.create(_ticket_request("req-reply-1"))
    async with browser() as session:
        assert (await login(session, url, NAME, PASSWORD)).status == 302
        token = await page_csrf(session, url, "/admin/tickets")
        for name, message, status, needle in (
            (ticket.handoff, "", 400, "1 to 3000 characters"),
            ("AD-99", "On it.", 404, "no ticket AD-99"),
            (ticket.handoff, "On it.", 409, "no conversation to reply in"),
        ):
            path = f"{url}/admin/tickets/{name}/reply"
            async with session.post(path, data={"csrf": token, "message": message}) as response:
                assert response.status == status
                assert needle in await response.text()
    assert (await services.handoff.desk.show(ticket.handoff))["messages"] == []
    assert [e["action"] for e in await console_audit(services)] == ["login"]


async def test_try_it_and_trace_detail(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSWERDESK_ADMIN_USER", NAME)
    monkeypatch.setenv("ANSWERDESK_ADMIN_PASSWORD", PASSWORD)
    settings = Settings(data_dir=demo_settings.data_dir)  # reads the login from the env
    async with running(settings) as (url, services), browser() as session:
        assert (await login(session, url, NAME, PASSWORD)).status == 302
        token = await page_csrf(session, url, "/admin/try")
        form = {
            "csrf": token,
            "email": "jordan.kim@harborlight.example",
            "audience": "dm",
            "question": "How long does a guest Wi-Fi pass last?",
        }
        async with session.post(f"{url}/admin/try", data=form) as response:
            assert response.status == 200
            html = await response.text()
        assert 'class="chat-message"' in html and "24 hours" in html
        request_id = re.search(r'href="/admin/traces/([0-9a-f]+)" id="trace-link"', html)[1]
        async with session.post(
            f"{url}/admin/try", data={**form, "audience": "everyone"}
        ) as response:
            assert response.status == 400
            assert "audience must be" in await response.text()
        async with session.get(f"{url}/admin/traces/{request_id}") as response:
            page = await response.text()
        assert response.status == 200
        assert "jordan.kim@harborlight.example" in page and "wifi-guests" in page
        assert 'id="retrieved"' in page and 'class="waterfall"' in page
        assert await services.traces.flush()  # the list reads the database, not the buffer
        async with session.get(f"{url}/admin/traces?platform=console&mode=answer") as listed:
            assert request_id in await listed.text()
        async with session.get(f"{url}/admin/traces?platform=slack") as listed:
            assert request_id not in await listed.text()
        async with session.get(f"{url}/admin/traces?platform=irc") as listed:
            assert listed.status == 400
        async with session.get(f"{url}/admin/traces/nope") as missing:
            assert missing.status == 404
        log = await console_audit(services)
        assert (log[1]["action"], log[1]["target"], log[1]["detail"]["as_user"]) == (
            "try_it",
            request_id,
            "jordan.kim@harborlight.example",
        )
        assert (log[0]["action"], log[0]["target"]) == ("trace_view", request_id)


async def test_dashboard_charts_and_slo_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSWERDESK_ADMIN_USER", NAME)
    monkeypatch.setenv("ANSWERDESK_ADMIN_PASSWORD", PASSWORD)
    slo = tmp_path / "slo.yaml"
    slo.write_text(
        "approved_by: Dana\napproved_on: 2026-11-30\nobjectives:\n"
        "  degraded_share: {max: 0.05, owner: answers-team}\n"
    )
    settings = Settings(data_dir=tmp_path / "var", slo={"file": slo})
    async with running(settings) as (url, services), browser() as session:
        for text_ in ("first question", "second question"):
            services.traces.submit(_trace(text_))
        assert await services.traces.flush()
        assert (await login(session, url, NAME, PASSWORD)).status == 302
        for chosen in ("24h", "7d", "30d"):
            async with session.get(f"{url}/admin?range={chosen}") as response:
                html = await response.text()
            assert response.status == 200
            assert html.count('<svg class="chart"') == 7
            assert 'id="slo-table"' in html and "answers-team" in html
            assert "<b>2</b> requests" in html
        async with session.get(f"{url}/admin?range=1y") as response:
            assert response.status == 400


def _trace(question: str) -> dict:
    return {
        "request_id": uuid.uuid4().hex[:16],
        "created_at": time.time() - 60,
        "platform": "slack",
        "mode": "answer",
        "latency_ms": 900.0,
        "cost_usd": 0.002,
        "cache": {"status": "miss"},
        "question": question,
        "stages": {},
        "model_calls": [],
    }


def _ticket_request(request_id: str) -> TicketRequest:
    return TicketRequest(request_id, None, "jordan.kim@harborlight.example", "VPN?", "test")


async def console_audit(services: Services) -> list[dict]:
    return await AdminStore(services.engine).audit_log()


async def test_evaluation_runs_listed_with_worst_cases_linked_to_traces(
    demo_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "mini.yaml"
    library.write_text(
        "name: console-mini\n"
        "cases:\n"
        "  - id: guest-wifi\n"
        "    question: How long does a guest Wi-Fi pass last?\n"
        "    as: jordan.kim@harborlight.example\n"
        "    must_include: ['24 hours']\n"
        "  - id: phrase-nobody-wrote\n"
        "    question: How many PTO days do I get after 3 years at Harborlight?\n"
        "    as: jordan.kim@harborlight.example\n"
        "    must_include: ['purple elephants']\n"
    )
    done = run(
        tmp_path, "eval", str(library), env={"ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.setenv("ANSWERDESK_ADMIN_USER", NAME)
    monkeypatch.setenv("ANSWERDESK_ADMIN_PASSWORD", PASSWORD)
    async with running(Settings(data_dir=demo_settings.data_dir)) as (url, _), browser() as session:
        assert (await login(session, url, NAME, PASSWORD)).status == 302
        async with session.get(f"{url}/admin/evaluations") as response:
            listing = await response.text()
        assert response.status == 200
        assert "console-mini" in listing and ">passed<" in listing
        run_id = re.search(
            r'href="/admin/evaluations/([0-9a-f]+)" class="evaluation-link"', listing
        )[1]
        async with session.get(f"{url}/admin/evaluations/{run_id}") as response:
            detail = await response.text()
        assert response.status == 200
        assert "<td>generation.must_include_rate</td><td>0.5</td>" in detail  # one of two
        worst = re.search(
            r"<td>phrase-nobody-wrote</td><td><a href=\"/admin/traces/([0-9a-f]+)\"", detail
        )
        assert worst, detail
        assert "guest-wifi" not in detail  # it passed: not among the worst
        async with session.get(f"{url}/admin/traces/{worst[1]}") as response:
            assert response.status == 200
            assert "PTO days" in await response.text()
        async with session.get(f"{url}/admin/evaluations/0000nope") as response:
            assert response.status == 404
