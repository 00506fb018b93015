"""Multi-workspace Slack over real HTTP: the browser's OAuth round trip into the running
aiohttp app (Bolt's flow, slack_sdk's SQLAlchemy stores on the service's database), then
signed events answered with each installation's own token, checked on the Slack Web API
double. The store runs on SQLite and (marked postgres) on PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import structlog
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, inspect, text

from adapters.db.engine import create_engine, downgrade_sync, upgrade_sync
from adapters.slack.oauth import manifest_bot_scopes
from bot.settings import Settings
from bot.wiring import Services, build_services
from core.acl import load_policy
from core.directory import DirectoryEntry, PlatformIdentity
from tests.conftest import DEMO
from tests.support.service import running as serve
from tests.support.slack_api import (
    BotInstallation,
    SlackApiDouble,
    app_mention,
    block_action,
    event_payload,
    signed_headers,
)

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "cs-9f8e7d6c5b4a-never-logged"
SIGNING_SECRET = "ss-0a1b2c3d4e5f-never-logged"
AUTHORIZE_URL = "https://slack.example/oauth/v2/authorize"
REDIRECT_URL = "https://answerdesk.example.com/slack/oauth_redirect"
STATE_COOKIE = "slack-app-oauth-state"
QUESTION = "<@{bot}> How long does a guest Wi-Fi pass last?"

ACME = BotInstallation(
    "xoxb-acme-1111-aaaa", team_id="T0ACME", team_name="Acme", bot_user_id="U0ACMEBOT"
)
BETA = BotInstallation(
    "xoxb-beta-2222-bbbb", team_id="T0BETA", team_name="Beta", bot_user_id="U0BETABOT"
)
GRID = BotInstallation(
    "xoxb-grid-3333-cccc",
    enterprise_id="E0GRID",
    enterprise_name="Grid Corp",
    is_enterprise_install=True,
    bot_user_id="W0GRIDBOT",
)
STORE_TABLES = {"slack_installations", "slack_bots", "slack_oauth_states"}


@pytest.fixture
def double() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as running:
        yield running


@dataclass
class Service:
    url: str
    services: Services
    double: SlackApiDouble

    async def rows(self, table: str) -> list[dict]:
        async with self.services.engine.connect() as conn:
            result = await conn.execute(text(f"SELECT * FROM {table}"))
            return [dict(row) for row in result.mappings()]


@asynccontextmanager
async def running(settings: Settings, double: SlackApiDouble) -> AsyncIterator[Service]:
    async with serve(settings) as (url, services):
        yield Service(url, services, double)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """Where the service (and so the installation and state stores) keeps its data."""
    if request.param == "sqlite":
        return {}  # the demo data dir's SQLite database
    # Its own collection, seeded with the IT documents by the `service` fixture.
    return {
        "database_url": request.getfixturevalue("postgres_url"),
        "chroma_collection": "oauth_pg_chunks",
    }


@pytest.fixture
async def service(
    database: dict[str, str],
    demo_settings: Settings,
    double: SlackApiDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Service]:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SLACK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    settings = Settings(
        data_dir=demo_settings.data_dir,
        **database,
        slack={
            "api_base_url": double.url,
            "post_interval_s": 0.01,
            "authorize_url": AUTHORIZE_URL,
            "oauth_redirect_url": REDIRECT_URL,
        },
    )
    if settings.database_url:
        seed = await build_services(settings)
        try:
            await seed.ingestor.ingest([DEMO / "corpus" / "it"], load_policy(DEMO / "acl.yaml"))
        finally:
            await seed.close()
    async with running(settings, double) as svc:
        yield svc


# -- the browser's side of the OAuth flow --------------------------------------------------


@dataclass
class Started:
    status: int
    location: str
    state: str
    cookie: str
    set_cookie: str


async def start_install(url: str) -> Started:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.get(f"{url}/slack/install", allow_redirects=False) as response,
    ):
        location = response.headers.get("Location", "")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        morsel = response.cookies.get(STATE_COOKIE)
        return Started(
            response.status,
            location,
            query.get("state", [""])[0],
            morsel.value if morsel else "",
            response.headers.get("Set-Cookie", ""),
        )


async def finish_install(
    url: str, query: dict[str, str], cookie: str | None
) -> tuple[int, str, str]:
    """Slack sends the browser back to the redirect URL; returns (status, type, page)."""
    headers = {"Cookie": f"{STATE_COOKIE}={cookie}"} if cookie is not None else {}
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.get(
            f"{url}/slack/oauth_redirect", params=query, headers=headers, allow_redirects=False
        ) as response,
    ):
        return response.status, response.content_type, await response.text()


async def install(svc: Service, code: str, installation: BotInstallation) -> str:
    """The whole round trip, as an installer's browser and Slack make it; returns the page."""
    svc.double.script_oauth(code, installation, redirect_uri=REDIRECT_URL)
    started = await start_install(svc.url)
    assert started.status == 302, started
    status, _, page = await finish_install(
        svc.url, {"code": code, "state": started.state}, started.cookie
    )
    assert status == 200, page
    return page


# -- events into the service -------------------------------------------------------------


async def send(url: str, payload: dict | bytes) -> int:
    form = isinstance(payload, bytes)
    body = payload if form else json.dumps(payload).encode()
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    headers = signed_headers(SIGNING_SECRET, body, content_type=content_type)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/slack/events", data=body, headers=headers) as response,
    ):
        return response.status


async def settle(double: SlackApiDouble, method: str = "chat.update", count: int = 1) -> None:
    """Wait (bounded) until the background answering has reached the double."""
    deadline = time.monotonic() + 60
    while len([c for c in double.calls_to(method) if c["status"] == 200]) < count:
        assert time.monotonic() < deadline, f"no {method} within 60 s: {double.calls}"
        await asyncio.sleep(0.05)


def mention(
    installation: BotInstallation, *, team_id: str, user: str, channel: str, ts: str
) -> dict:
    bot = installation.bot_user_id
    return event_payload(
        app_mention(QUESTION.format(bot=bot), user=user, channel=channel, ts=ts),
        event_id=f"Ev-{team_id}-{ts}",
        team_id=team_id,
        enterprise_id=installation.enterprise_id,
        bot_user_id=bot,
        is_enterprise_install=installation.is_enterprise_install,
    )


def calls_in(double: SlackApiDouble, channel: str) -> list[dict]:
    return [c for c in double.calls if c["args"].get("channel") == channel]


def request_id_of(blocks: list[dict]) -> str:
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button":
                return element["value"]
    raise AssertionError("no buttons in the answer")


# -- the install flow ----------------------------------------------------------------------


async def test_install_redirects_to_slack_and_stores_the_installation(service: Service) -> None:
    started = await start_install(service.url)
    assert started.status == 302
    assert started.location.startswith(AUTHORIZE_URL + "?")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(started.location).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == [",".join(manifest_bot_scopes())]  # the manifest's one list
    assert query["redirect_uri"] == [REDIRECT_URL]
    assert started.state and started.cookie == started.state
    assert "HttpOnly" in started.set_cookie and "Secure" in started.set_cookie
    assert [r["state"] for r in await service.rows("slack_oauth_states")] == [started.state]

    service.double.script_oauth(
        "code-acme", ACME, installer="U0ACMEADMIN", redirect_uri=REDIRECT_URL
    )
    status, content_type, page = await finish_install(
        service.url, {"code": "code-acme", "state": started.state}, started.cookie
    )
    assert (status, content_type) == (200, "text/html")
    assert "slack://app?team=T0ACME" in page  # Bolt's success page opens the workspace

    exchange = service.double.calls_to("oauth.v2.access")
    assert len(exchange) == 1
    basic = exchange[0]["headers"]["authorization"].removeprefix("Basic ")
    assert base64.b64decode(basic).decode() == f"{CLIENT_ID}:{CLIENT_SECRET}"
    assert exchange[0]["args"] == {"code": "code-acme", "redirect_uri": REDIRECT_URL}
    assert service.double.tokens_used("auth.test") == [ACME.token]  # Bolt reads the bot id

    [row] = await service.rows("slack_installations")
    assert (row["client_id"], row["team_id"], row["enterprise_id"]) == (CLIENT_ID, "T0ACME", None)
    assert (row["bot_token"], row["bot_user_id"], row["bot_id"]) == (ACME.token, "U0ACMEBOT", "B1")
    assert (row["user_id"], bool(row["is_enterprise_install"])) == ("U0ACMEADMIN", False)
    [bot] = await service.rows("slack_bots")
    assert (bot["team_id"], bot["bot_token"]) == ("T0ACME", ACME.token)
    assert await service.rows("slack_oauth_states") == []  # the state is single use

    # Replaying the finished redirect fails: the state was consumed.
    status, _, page = await finish_install(
        service.url, {"code": "code-acme", "state": started.state}, started.cookie
    )
    assert status == 401 and "invalid_state" in page
    assert len(await service.rows("slack_installations")) == 1


BadRedirect = Callable[["Service"], Awaitable[tuple[dict[str, str], str | None]]]


async def _expired(svc: Service) -> tuple[dict[str, str], str | None]:
    started = await start_install(svc.url)
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)  # naive UTC, as stored
    async with svc.services.engine.begin() as conn:
        await conn.execute(
            text("UPDATE slack_oauth_states SET expire_at = :past WHERE state = :state"),
            {"past": past, "state": started.state},
        )
    return {"code": "code-x", "state": started.state}, started.cookie


async def _wrong_state(svc: Service) -> tuple[dict[str, str], str | None]:
    await start_install(svc.url)
    forged = "5d41402a-bc4b-4a76-b9a0-000000000000"
    return {"code": "code-x", "state": forged}, forged  # cookie and query agree; never issued


async def _no_cookie(svc: Service) -> tuple[dict[str, str], str | None]:
    started = await start_install(svc.url)
    return {"code": "code-x", "state": started.state}, None


async def _cookie_of_another_browser(svc: Service) -> tuple[dict[str, str], str | None]:
    mine, theirs = await start_install(svc.url), await start_install(svc.url)
    return {"code": "code-x", "state": mine.state}, theirs.cookie


async def _no_state(svc: Service) -> tuple[dict[str, str], str | None]:
    started = await start_install(svc.url)
    return {"code": "code-x"}, started.cookie


async def _unknown_code(svc: Service) -> tuple[dict[str, str], str | None]:
    started = await start_install(svc.url)
    return {"code": "code-nobody-issued", "state": started.state}, started.cookie


async def _installer_cancelled(svc: Service) -> tuple[dict[str, str], str | None]:
    started = await start_install(svc.url)
    return {"error": "access_denied", "state": started.state}, started.cookie


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        (_expired, 401, "invalid_state"),
        (_wrong_state, 401, "invalid_state"),
        (_no_cookie, 400, "invalid_browser"),
        (_cookie_of_another_browser, 400, "invalid_browser"),
        (_no_state, 400, "invalid_browser"),
        (_unknown_code, 401, "invalid_code"),
        (_installer_cancelled, 200, "access_denied"),  # Slack's own error, shown as such
    ],
    ids=lambda v: getattr(v, "__name__", str(v)).lstrip("_"),
)
async def test_a_bad_redirect_shows_an_error_page_and_stores_nothing(
    service: Service, case: BadRedirect, status: int, reason: str
) -> None:
    service.double.script_oauth("code-x", ACME, redirect_uri=REDIRECT_URL)
    query, cookie = await case(service)
    got, content_type, page = await finish_install(service.url, query, cookie)
    assert (got, content_type) == (status, "text/html")
    assert "Something Went Wrong" in page and reason in page
    assert CLIENT_SECRET not in page
    assert await service.rows("slack_installations") == []
    assert await service.rows("slack_bots") == []
    exchanged = [c["args"].get("code") for c in service.double.calls_to("oauth.v2.access")]
    assert exchanged == (["code-nobody-issued"] if reason == "invalid_code" else [])


# -- events answered with the installation's token --------------------------------------------


async def install_acme_and_beta(service: Service) -> None:
    """Two workspaces, each with a member and a public channel, both installed."""
    double = service.double
    double.add_user("U0ACMEANA", "ana@acme.example", team_id="T0ACME")
    double.add_user("U0BETABEN", "ben@beta.example", team_id="T0BETA")
    double.add_channel("C0ACMEGEN", kind="public", members=["U0ACMEANA", "U0ACMEBOT"])
    double.add_channel("C0BETAGEN", kind="public", members=["U0BETABEN", "U0BETABOT"])
    await install(service, "code-acme", ACME)
    await install(service, "code-beta", BETA)


async def test_two_workspaces_are_each_answered_with_their_own_token(service: Service) -> None:
    double = service.double
    await install_acme_and_beta(service)
    assert len(await service.rows("slack_installations")) == 2

    status_a = await send(
        service.url,
        mention(ACME, team_id="T0ACME", user="U0ACMEANA", channel="C0ACMEGEN", ts="1.000100"),
    )
    status_b = await send(
        service.url,
        mention(BETA, team_id="T0BETA", user="U0BETABEN", channel="C0BETAGEN", ts="2.000100"),
    )
    assert (status_a, status_b) == (200, 200)
    await settle(double, count=2)

    for channel, installation in (("C0ACMEGEN", ACME), ("C0BETAGEN", BETA)):
        calls = calls_in(double, channel)
        methods = {c["method"] for c in calls}
        assert {"conversations.info", "chat.postMessage", "chat.update"} <= methods
        assert {c["token"] for c in calls} == {installation.token}
    users = {c["args"]["user"]: c["token"] for c in double.calls_to("users.info")}
    assert users == {"U0ACMEANA": ACME.token, "U0BETABEN": BETA.token}

    # A button in Beta's answer is handled with Beta's token too.
    update = next(c for c in double.calls_to("chat.update") if c["args"]["channel"] == "C0BETAGEN")
    request_id = request_id_of(update["args"]["blocks"])
    click = block_action(
        "answerdesk_talk_to_human",
        request_id,
        user="U0BETABEN",
        channel="C0BETAGEN",
        message_ts="2.000200",
        thread_ts="2.000100",
        team_id="T0BETA",
    )
    assert await send(service.url, click) == 200
    await settle(double, "chat.postMessage", 3)
    handoff = double.calls_to("chat.postMessage")[-1]
    assert handoff["args"]["channel"] == "C0BETAGEN" and "ticket" in handoff["args"]["text"]
    assert handoff["token"] == BETA.token


async def test_an_org_wide_install_answers_every_workspace_of_the_org(service: Service) -> None:
    double = service.double
    # The asker is known to the directory under the org (enterprise id as tenant).
    await service.services.directory.import_entries(
        [
            DirectoryEntry(
                "grid.user@harborlight.example",
                "Grid User",
                ("engineering",),
                (PlatformIdentity("slack", "E0GRID", "W0GRIDUSER"),),
            )
        ],
        replace=False,
    )
    double.add_user("W0GRIDOTHER", "other@grid.example", team_id="T0GRIDWS2")
    double.add_channel("C0GRIDONE", kind="public", members=["W0GRIDUSER", "W0GRIDBOT"])
    double.add_channel("C0GRIDTWO", kind="public", members=["W0GRIDOTHER", "W0GRIDBOT"])

    page = await install(service, "code-grid", GRID)
    # Bolt's page for an org-wide install: on to adding the app to the org's workspaces.
    assert "https://gridcorp.enterprise.slack.com/manage/organization/apps/profile/A1/" in page
    [row] = await service.rows("slack_installations")
    assert (row["enterprise_id"], row["team_id"]) == ("E0GRID", None)
    assert bool(row["is_enterprise_install"]) is True
    assert row["bot_token"] == GRID.token

    one = mention(GRID, team_id="T0GRIDWS1", user="W0GRIDUSER", channel="C0GRIDONE", ts="3.0001")
    two = mention(GRID, team_id="T0GRIDWS2", user="W0GRIDOTHER", channel="C0GRIDTWO", ts="4.0001")
    assert one["authorizations"][0]["is_enterprise_install"] is True
    assert await send(service.url, one) == 200
    assert await send(service.url, two) == 200
    await settle(double, count=2)

    for channel, workspace in (("C0GRIDONE", "T0GRIDWS1"), ("C0GRIDTWO", "T0GRIDWS2")):
        calls = calls_in(double, channel)
        assert {"chat.postMessage", "chat.update"} <= {c["method"] for c in calls}
        assert {c["token"] for c in calls} == {GRID.token}
        # An org token needs the workspace named: Bolt's client passes the event's team.
        assert {c["args"].get("team_id") for c in calls} == {workspace}
    # The directory knew W0GRIDUSER under the org id; only the other user needed users.info.
    assert [c["args"]["user"] for c in double.calls_to("users.info")] == ["W0GRIDOTHER"]
    update = next(c for c in double.calls_to("chat.update") if c["args"]["channel"] == "C0GRIDONE")
    trace = await service.services.traces.get(request_id_of(update["args"]["blocks"]))
    assert trace is not None and trace["asker"] == "grid.user@harborlight.example"


async def test_an_event_from_a_workspace_without_installation_is_acked_and_dropped(
    service: Service,
) -> None:
    await install(service, "code-acme", ACME)
    service.double.reset()
    stranger = BotInstallation("xoxb-not-installed", team_id="T0NOBODY", bot_user_id="U0NOBOT")
    with structlog.testing.capture_logs() as logs:
        status = await send(
            service.url,
            mention(stranger, team_id="T0NOBODY", user="U0X", channel="C0NOBODY", ts="5.0001"),
        )
        assert status == 200  # acknowledged at once, as Slack requires
        deadline = time.monotonic() + 60
        while not any("without an installation" in e["event"] for e in logs):
            assert time.monotonic() < deadline, logs
            await asyncio.sleep(0.05)
    [line] = [e for e in logs if "without an installation" in e["event"]]
    assert (line["team_id"], line["log_level"]) == ("T0NOBODY", "warning")
    assert service.double.calls == []  # nothing posted, no token tried


def lifecycle(
    installation: BotInstallation, kind: str, *, team_id: str, ts: str, **event: object
) -> dict:
    """An `app_uninstalled` / `tokens_revoked` event as Slack sends it to the app."""
    return event_payload(
        {"type": kind, "event_ts": ts, **event},
        event_id=f"Ev-{kind}-{team_id}-{ts}",
        team_id=team_id,
        enterprise_id=installation.enterprise_id,
        bot_user_id=installation.bot_user_id,
        is_enterprise_install=installation.is_enterprise_install,
    )


async def wait_rows(service: Service, table: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while len(rows := await service.rows(table)) != count:
        assert time.monotonic() < deadline, (table, rows)
        await asyncio.sleep(0.05)
    return rows


async def test_uninstalling_forgets_only_that_installation(service: Service) -> None:
    double = service.double
    await install_acme_and_beta(service)
    await install(service, "code-grid", GRID)

    uninstalled = lifecycle(ACME, "app_uninstalled", team_id="T0ACME", ts="7.1")
    assert await send(service.url, uninstalled) == 200
    [beta, grid] = sorted(
        await wait_rows(service, "slack_installations", 2), key=lambda r: r["bot_token"]
    )
    assert (beta["team_id"], grid["enterprise_id"]) == ("T0BETA", "E0GRID")
    assert {r["team_id"] for r in await service.rows("slack_bots")} == {"T0BETA", None}

    # Acme's mentions are now dropped; Beta is still answered with its own token.
    double.reset()
    with structlog.testing.capture_logs() as logs:
        gone = mention(ACME, team_id="T0ACME", user="U0ACMEANA", channel="C0ACMEGEN", ts="7.2")
        assert await send(service.url, gone) == 200
        kept = mention(BETA, team_id="T0BETA", user="U0BETABEN", channel="C0BETAGEN", ts="7.3")
        assert await send(service.url, kept) == 200
        await settle(double)
    assert calls_in(double, "C0ACMEGEN") == []
    assert {c["token"] for c in calls_in(double, "C0BETAGEN")} == {BETA.token}
    assert any("without an installation" in e["event"] and e["team_id"] == "T0ACME" for e in logs)

    # A revoked bot token of the org-wide install (event from one of its workspaces)
    # removes the org's bot, not Beta's.
    revoked = lifecycle(
        GRID, "tokens_revoked", team_id="T0GRIDWS1", ts="7.4", tokens={"bot": ["W0GRIDBOT"]}
    )
    assert await send(service.url, revoked) == 200
    [bot] = await wait_rows(service, "slack_bots", 1)
    assert bot["team_id"] == "T0BETA"
    # Uninstalled from the whole org: the org's installation goes too.
    org_gone = lifecycle(GRID, "app_uninstalled", team_id="T0GRIDWS1", ts="7.5")
    assert await send(service.url, org_gone) == 200
    [left] = await wait_rows(service, "slack_installations", 1)
    assert left["team_id"] == "T0BETA"


async def test_single_workspace_mode_has_no_install_pages(
    demo_settings: Settings, double: SlackApiDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", double.bot_token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.delenv("SLACK_CLIENT_ID", raising=False)
    monkeypatch.delenv("SLACK_CLIENT_SECRET", raising=False)
    settings = Settings(data_dir=demo_settings.data_dir, slack={"api_base_url": double.url})
    async with running(settings, double) as svc, aiohttp.ClientSession() as session:
        for path in ("/slack/install", "/slack/oauth_redirect"):
            async with session.get(svc.url + path, allow_redirects=False) as response:
                assert response.status == 404
                assert "SLACK_CLIENT_ID" in (await response.json())["error"]


async def test_both_setups_at_once_is_refused_with_a_reason(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SLACK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    settings = Settings(data_dir=demo_settings.data_dir)  # reads the environment, as serve does
    with SlackApiDouble() as double:
        async with running(settings, double) as svc, aiohttp.ClientSession() as session:
            async with session.post(f"{svc.url}/slack/events", data=b"{}") as response:
                assert response.status == 503
                error = (await response.json())["error"]
                assert "both set" in error and CLIENT_SECRET not in error
            async with session.get(f"{svc.url}/slack/install") as response:
                assert response.status == 404


async def test_no_secret_reaches_logs_traces_or_pages(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    # The service keeps libraries at WARNING; the Slack libraries' logger is forced to DEBUG
    # here so that even their request/response dumps go through the masking.
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.DEBUG, logger="answerdesk.slack")
    double = service.double
    double.add_channel("C0ACMEGEN", kind="public", members=["U0ACMEANA"])
    double.add_user("U0ACMEANA", "ana@acme.example", team_id="T0ACME")
    with structlog.testing.capture_logs() as logs:
        await install(service, "code-acme", ACME)
        pages = [(await start_install(service.url)).set_cookie]
        started = await start_install(service.url)
        pages.append(
            (
                await finish_install(
                    service.url, {"code": "code-unknown", "state": started.state}, started.cookie
                )
            )[2]
        )
        await send(
            service.url,
            mention(ACME, team_id="T0ACME", user="U0ACMEANA", channel="C0ACMEGEN", ts="6.0001"),
        )
        await settle(double)
        stranger = BotInstallation("xoxb-stranger-9999", team_id="T0NOBODY")
        await send(
            service.url,
            mention(stranger, team_id="T0NOBODY", user="U0X", channel="C0X", ts="7.0001"),
        )
        deadline = time.monotonic() + 60
        while not any("without an installation" in e["event"] for e in logs):
            assert time.monotonic() < deadline, logs
            await asyncio.sleep(0.05)
        assert await service.services.traces.flush()

    stdlib = "\n".join(
        record.getMessage() + "\n" + (record.exc_text or "") for record in caplog.records
    )
    ours = json.dumps(logs, default=str)
    traces = json.dumps(await service.rows("traces"), default=str)
    # The capture is not empty: the install, the refused code and the stranger are all there.
    assert any(e["event"] == "slack app installed" for e in logs)
    assert any(e["event"] == "slack app install failed" for e in logs)
    assert "oauth.v2.access" in stdlib and "(redacted)" in stdlib
    for secret in (CLIENT_SECRET, SIGNING_SECRET, ACME.token, "code-acme", "code-unknown"):
        for where, captured in (("stdlib", stdlib), ("structlog", ours), ("traces", traces)):
            assert secret not in captured, f"{secret!r} in {where} logs"
        assert all(secret not in page for page in pages)


# -- migration 0005 ------------------------------------------------------------------------


def _schema(url: str) -> dict[str, dict]:
    async def run() -> dict[str, dict]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:

                def read(sync_conn) -> dict[str, dict]:  # type: ignore[no-untyped-def]
                    inspector = inspect(sync_conn)
                    dialect = sync_conn.dialect
                    found = {}
                    for table in STORE_TABLES & set(inspector.get_table_names()):
                        columns = {
                            c["name"]: (str(c["type"].compile(dialect=dialect)), c["nullable"])
                            for c in inspector.get_columns(table)
                        }
                        indexes = {
                            i["name"]: tuple(i["column_names"])
                            for i in inspector.get_indexes(table)
                        }
                        primary = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
                        found[table] = {"columns": columns, "indexes": indexes, "pk": primary}
                    return found

                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _expected(url: str) -> dict[str, dict]:
    """The schema slack_sdk's own table builders describe, in this database's dialect."""
    dialect = create_engine(url).dialect
    metadata = MetaData()
    tables = [
        SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations"),
        SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots"),
        SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states"),
    ]
    expected = {}
    for table in tables:
        columns = {
            c.name: (str(c.type.compile(dialect=dialect)), bool(c.nullable)) for c in table.columns
        }
        indexes = {i.name: tuple(c.name for c in i.columns) for i in table.indexes}
        pk = tuple(c.name for c in table.primary_key.columns)
        expected[table.name] = {"columns": columns, "indexes": indexes, "pk": pk}
    return expected


def _round_trip(url: str) -> None:
    upgrade_sync(url)
    assert _schema(url) == _expected(url)
    downgrade_sync(url, "0004")
    assert _schema(url) == {}
    upgrade_sync(url)
    assert _schema(url) == _expected(url)


def test_migration_0005_matches_slack_sdk_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}")


@pytest.mark.postgres
def test_migration_0005_matches_slack_sdk_on_postgres(postgres_url: str) -> None:
    _round_trip(postgres_url)
