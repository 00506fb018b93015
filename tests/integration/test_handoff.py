"""Human handoff through real ticket-system wire formats, driven the way users meet it: a
question @mentioned in Slack (signed requests into the running service, the Slack Web API
double), "Talk to a human" clicked, tickets arriving at local Jira / Zendesk / ServiceNow /
webhook doubles, agents' work posted back to `POST /hooks/tickets/{provider}`."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from bot.settings import Settings
from bot.wiring import build_services
from core.answering.redaction import redact_pii
from tests.integration.test_slack import (
    JORDAN,
    PRIYA,
    PUBLIC_CHANNEL,
    SECRET,
    send,
    settle,
)
from tests.support.cli import run
from tests.support.service import running
from tests.support.slack_api import SlackApiDouble, app_mention, block_action, event_payload
from tests.support.ticket_systems import (
    JiraDouble,
    ServiceNowDouble,
    WebhookReceiver,
    ZendeskDouble,
    adf_text,
    answerdesk_hook,
    jira_comment,
    jira_hook,
    jira_status,
    servicenow_hook,
    verify_answerdesk_signature,
    zendesk_comment,
    zendesk_hook,
    zendesk_status,
)

TEAM = "T0HARBOR1"
ESCALATION = "C0ESCALATE"
URL_BASE = "https://answerdesk.example.com/admin"
FAST = {
    "inline_timeout_s": 3,
    "timeout_s": 3,
    "backoff_s": 0.2,
    "max_backoff_s": 1.0,
    "poll_s": 0.2,
    "lease_s": 10,
}
QUESTION = "What is the deductible on Harborlight Basic?"
JORDAN_EMAIL = "jordan.kim@harborlight.example"
SYS_ID = "6816f79cc0a8016401c5a33be04be441"  # Jordan's sys_user in ServiceNow


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-test") as double:
        yield double


@pytest.fixture
def double(slack_api: SlackApiDouble) -> SlackApiDouble:
    slack_api.reset(directory=True)
    slack_api.add_user(PRIYA, "priya.raman@harborlight.example")
    slack_api.add_user(JORDAN, JORDAN_EMAIL)
    slack_api.add_channel(PUBLIC_CHANNEL, kind="public", members=[PRIYA, JORDAN])
    slack_api.add_channel(ESCALATION, kind="public", members=["UBOT"])
    return slack_api


@pytest.fixture
def slack_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    return monkeypatch


def configured(data_dir: Path, double: SlackApiDouble, **handoff: Any) -> Settings:
    delivery = {**FAST, **handoff.pop("delivery", {})}
    return Settings(
        data_dir=data_dir,
        slack={"api_base_url": double.url, "post_interval_s": 0.01},
        tickets={"url_base": URL_BASE},
        handoff={**handoff, "delivery": delivery},
    )


async def ask(url: str, double: SlackApiDouble, thread: str, text: str = QUESTION) -> str:
    """@mention in a new thread; the answer's request id."""
    before = len(double.calls_to("chat.update"))
    event = app_mention(f"<@UBOT> {text}", user=JORDAN, channel=PUBLIC_CHANNEL, ts=thread)
    await send(url, event_payload(event, event_id=f"Ev-{thread}-{before}"))
    await settle(double, "chat.update", before + 1)
    return request_id_of(double.calls_to("chat.update")[-1]["args"]["blocks"])


def request_id_of(blocks: list[dict]) -> str:
    """The answer's request id, from its footer (handoff answers have no buttons)."""
    found = re.search(r"request `([0-9a-f]+)`", json.dumps(blocks))
    assert found, blocks
    return found.group(1)


async def follow_up(url: str, double: SlackApiDouble, thread: str, text: str) -> str:
    before = len(double.calls_to("chat.update"))
    message = {
        "type": "message",
        "channel_type": "channel",
        "user": JORDAN,
        "channel": PUBLIC_CHANNEL,
        "text": text,
        "ts": f"{thread[:-3]}900",
        "thread_ts": thread,
    }
    await send(url, event_payload(message, event_id=f"Ev-follow-{thread}"))
    await settle(double, "chat.update", before + 1)
    return request_id_of(double.calls_to("chat.update")[-1]["args"]["blocks"])


def human(request_id: str, thread: str) -> bytes:
    return block_action(
        "answerdesk_talk_to_human",
        request_id,
        user=JORDAN,
        channel=PUBLIC_CHANNEL,
        message_ts="1.1",
        thread_ts=thread,
    )


async def posted(
    double: SlackApiDouble,
    needle: str,
    *,
    channel: str = PUBLIC_CHANNEL,
    thread: str | None = None,
    timeout: float = 30,
) -> dict:
    """The first message in ``channel`` (``thread``) whose text contains ``needle``."""
    deadline = time.monotonic() + timeout
    while True:
        for message in double.messages():
            if (
                message["channel"] == channel
                and needle in message["text"]
                and thread in (None, message["thread_ts"])
            ):
                return message
        assert time.monotonic() < deadline, f"no message with {needle!r}: {double.messages()}"
        await asyncio.sleep(0.1)


def texts(double: SlackApiDouble) -> list[str]:
    return [m["text"] for m in double.messages()]


async def hook(url: str, provider: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/hooks/tickets/{provider}", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def until(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return value


# --- Jira: one ticket under retried clicks, with everything an agent needs -----------------


@pytest.fixture
def jira(slack_env: pytest.MonkeyPatch) -> Iterator[JiraDouble]:
    with JiraDouble() as system:
        slack_env.setenv("JIRA_EMAIL", system.email)
        slack_env.setenv("JIRA_API_TOKEN", system.token)
        slack_env.setenv("JIRA_WEBHOOK_SECRET", "jira-hook-secret")
        yield system


def jira_settings(
    data_dir: Path, double: SlackApiDouble, jira: JiraDouble, **more: Any
) -> Settings:
    return configured(
        data_dir,
        double,
        provider="jira",
        jira={"base_url": jira.url, "project_key": "HELP", "requester_field": "customfield_10050"},
        announce_channel=ESCALATION,
        **more,
    )


async def test_jira_one_ticket_under_retried_clicks_carrying_what_agents_need(
    demo_settings: Settings, double: SlackApiDouble, jira: JiraDouble
) -> None:
    thread = "1700001000.000100"
    async with running(jira_settings(demo_settings.data_dir, double, jira)) as (url, services):
        await ask(url, double, thread)
        request_id = await follow_up(url, double, thread, "and for Plus?")
        click = human(request_id, thread)
        replies = await asyncio.gather(*(send(url, click) for _ in range(3)))  # double + retried
        assert [status for status, _ in replies] == [200, 200, 200]
        notice = await posted(double, "HELP-1")
        assert notice["thread_ts"] == thread and "A person will follow up" in notice["text"]
        announcement = await posted(double, "New ticket", channel=ESCALATION)
        await asyncio.sleep(1.0)  # let any duplicate surface
        assert len(jira.created) == 1
        assert len(jira.requests_to("POST", "/rest/api/3/issue")) == 1
        assert sum("HELP-1" in text for text in texts(double)) == 2  # the notice, the announcement
        [ticket] = await services.tickets.list()
        trace = await until(lambda: _trace_ticket(services, request_id))

    assert (ticket["key"], ticket["provider"], ticket["delivery"]) == (
        "HELP-1",
        "jira",
        "delivered",
    )
    assert ticket["request_id"] == request_id
    assert trace["id"] == "HELP-1" and trace["url"] == f"{jira.url}/browse/HELP-1"
    [issue] = jira.created
    fields = issue["fields"]
    assert fields["project"] == {"key": "HELP"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == "and for Plus?"
    assert fields["customfield_10050"] == JORDAN_EMAIL
    assert "answerdesk" in fields["labels"] and any(
        label.startswith("answerdesk-") for label in fields["labels"]
    )
    description = adf_text(fields["description"])
    thread_link = (
        f"https://app.slack.com/client/{TEAM}/{PUBLIC_CHANNEL}/thread/{PUBLIC_CHANNEL}-{thread}"
    )
    for needle in (
        "and for Plus?",  # the question
        QUESTION,  # the transcript holds the first turn
        f"Asker: {JORDAN_EMAIL}",
        f"slack user {JORDAN}",
        "Trigger: asked for a human (slack button)",
        request_id,
    ):
        assert needle in description, needle
    links = _links(fields["description"])
    assert f"{URL_BASE}/traces/{request_id}" in links and thread_link in links
    assert "Answer given (answer)" in description and "[1]" in description  # cited answer
    headers = jira.requests_to("POST", "/rest/api/3/issue")[0]["headers"]
    assert headers["Authorization"].startswith("Basic ")
    assert "HELP-1" in announcement["text"] and JORDAN_EMAIL in announcement["text"]
    assert "and for Plus?" in announcement["text"] and thread_link in json.dumps(
        announcement["blocks"]
    )


async def _trace_ticket(services: Any, request_id: str) -> dict | None:
    trace = await services.traces.get(request_id)
    ticket = (trace or {}).get("ticket")
    return ticket if ticket and ticket.get("id") else None


def _links(node: Any) -> set[str]:
    out = set()
    if isinstance(node, dict):
        for mark in node.get("marks", []):
            if mark.get("type") == "link":
                out.add(mark["attrs"]["href"])
        for child in node.get("content", []):
            out |= _links(child)
    return out


# --- the loop-back: agents' comments and status changes come back to the thread -------------


async def test_jira_agent_comments_reach_the_thread_and_internal_notes_never_do(
    demo_settings: Settings, double: SlackApiDouble, jira: JiraDouble
) -> None:
    thread = "1700001100.000100"
    secret = "jira-hook-secret"
    async with running(jira_settings(demo_settings.data_dir, double, jira)) as (url, services):
        request_id = await ask(url, double, thread)
        await send(url, human(request_id, thread))
        await posted(double, "HELP-1")

        status, body = await hook(
            url,
            "jira",
            *jira_hook(secret, jira_comment("HELP-1", "100", "Internal: check SAP", public=False)),
        )
        assert (status, body["events"][0]["outcome"]) == (200, "internal note: not posted")
        public = jira_comment("HELP-1", "101", "Hi Jordan, Basic's deductible is $1,500.")
        for _ in range(2):  # a redelivered webhook posts once
            status, _ = await hook(url, "jira", *jira_hook(secret, public))
            assert status == 200
        reply = await posted(double, "deductible is $1,500")
        assert reply["thread_ts"] == thread and "Alex Agent" in reply["text"]

        forged, headers = jira_hook("not-the-secret", jira_comment("HELP-1", "102", "forged"))
        status, body = await hook(url, "jira", forged, headers)
        assert status == 401 and body == {"error": "unauthorized"}
        status, _ = await hook(url, "jira", forged, {"Content-Type": "application/json"})
        assert status == 401
        status, _ = await hook(url, "zendesk", *jira_hook(secret, public))  # not configured here
        assert status == 401
        status, body = await hook(url, "jira", *jira_hook(secret, b"{not json"))
        assert status == 400 and "error" in body  # signed, but malformed

        status, _ = await hook(
            url, "jira", *jira_hook(secret, jira_status("HELP-1", "9001", "Done", "done"))
        )
        assert status == 200
        await posted(double, "HELP-1 was resolved")
        outcome = await until(lambda: _resolved(services, request_id))
        [ticket] = await services.tickets.list()
        await asyncio.sleep(0.5)

    assert ticket["status"] == "closed"
    assert not any("SAP" in text or "forged" in text for text in texts(double))
    assert sum("deductible is $1,500" in text for text in texts(double)) == 1
    assert outcome["first_response_s"] is not None and outcome["resolution_s"] is not None
    assert 0 <= outcome["first_response_s"] <= outcome["resolution_s"]


async def _resolved(services: Any, request_id: str) -> dict | None:
    trace = await services.traces.get(request_id)
    ticket = (trace or {}).get("ticket") or {}
    return ticket if ticket.get("resolution_s") is not None else None


@dataclass
class Case:
    """One ticket system for the loop-back test: its double, settings, how it signs its
    webhooks, and its payloads for a public comment, an internal note and a resolution."""

    system: Any
    settings: Callable[[Any], dict]
    sign: Callable[[str, dict], tuple[bytes, dict[str, str]]]
    public: Callable[[str], dict]
    internal: Callable[[str], dict]
    resolved: Callable[[str], dict]
    sent: Callable[[Any], str]  # the created ticket's text, as the system stored it


@pytest.mark.parametrize("provider", ["zendesk", "servicenow", "webhook"])
async def test_each_provider_loop_back_posts_public_comments_only(
    provider: str,
    demo_settings: Settings,
    double: SlackApiDouble,
    slack_env: pytest.MonkeyPatch,
) -> None:
    thread = "1700001200.000100"
    secret = f"{provider}-hook-secret"
    case = _provider_case(provider, secret, slack_env)
    with case.system:
        settings = configured(
            demo_settings.data_dir, double, provider=provider, **case.settings(case.system)
        )
        async with running(settings) as (url, services):
            request_id = await ask(url, double, thread)
            await send(url, human(request_id, thread))
            await posted(double, "A person will follow up", thread=thread)
            [ticket] = await services.tickets.list()
            key = ticket["key"]
            status, body = await hook(url, provider, *case.sign(secret, case.internal(key)))
            assert status == 200 and body["events"][0]["outcome"] == "internal note: not posted"
            status, body = await hook(url, provider, *case.sign(secret, case.public(key)))
            assert status == 200 and body["events"][0]["outcome"] == "queued for the thread", body
            reply = await posted(double, "Try the portal", thread=thread)
            forged = case.sign("wrong-secret", case.public(key))
            status, body = await hook(url, provider, *forged)
            assert status == 401 and body == {"error": "unauthorized"}
            status, _ = await hook(url, provider, *case.sign(secret, case.resolved(key)))
            assert status == 200
            await posted(double, f"{key} was resolved", thread=thread)
            await asyncio.sleep(0.5)
            [closed] = await services.tickets.list()
    thread_link = (
        f"https://app.slack.com/client/{TEAM}/{PUBLIC_CHANNEL}/thread/{PUBLIC_CHANNEL}-{thread}"
    )
    [sent] = case.system.created
    for needle in (
        QUESTION,
        "asked for a human (slack button)",
        request_id,
        f"{URL_BASE}/traces/{request_id}",
        JORDAN_EMAIL,
        JORDAN,
        thread_link,
    ):
        assert needle in case.sent(sent), (provider, needle)
    assert ticket["provider"] == provider and closed["status"] == "closed"
    assert closed["first_response_s"] is not None and closed["resolution_s"] is not None
    assert "Try the portal reset page." in reply["text"]
    assert not any("secret note" in text for text in texts(double))


def _provider_case(provider: str, secret: str, env: pytest.MonkeyPatch) -> Case:
    if provider == "zendesk":
        zendesk = ZendeskDouble()
        env.setenv("ZENDESK_EMAIL", zendesk.email)
        env.setenv("ZENDESK_API_TOKEN", zendesk.token)
        env.setenv("ZENDESK_WEBHOOK_SECRET", secret)
        return Case(
            zendesk,
            lambda s: {"zendesk": {"base_url": s.url}},
            zendesk_hook,
            lambda key: zendesk_comment(key, 1, "Try the portal reset page.", public=True),
            lambda key: zendesk_comment(key, 2, "secret note for agents", public=False),
            lambda key: zendesk_status(key, "SOLVED"),
            lambda created: created["comment"]["body"],
        )
    if provider == "servicenow":
        snow = ServiceNowDouble(users={JORDAN_EMAIL: SYS_ID})
        env.setenv("SNOW_USER", snow.user)
        env.setenv("SNOW_PASSWORD", snow.password)
        env.setenv("SNOW_WEBHOOK_SECRET", secret)
        rule = {"sys_id": "9d385017c611228701d22104cc95c371", "updated_by": "Beth Anglin"}
        return Case(
            snow,
            lambda s: {"servicenow": {"base_url": s.url}},
            servicenow_hook,
            lambda key: {
                **rule,
                "number": key,
                "sys_mod_count": "3",
                "comments": "2026-12-12 10:00:00 - Beth Anglin (Additional comments)\n"
                "Try the portal reset page.",
            },
            lambda key: {**rule, "number": key, "sys_mod_count": "4", "work_notes": "secret note"},
            lambda key: {
                **rule,
                "number": key,
                "sys_mod_count": "5",
                "state_changed": True,
                "state": "Resolved",
                "state_code": "6",
            },
            lambda created: f"{created['description']}\n{created['work_notes']}",
        )
    receiver = WebhookReceiver(secret=secret)
    env.setenv("ANSWERDESK_WEBHOOK_SECRET", secret)
    event = {"author": "Kim", "type": "comment"}
    return Case(
        receiver,
        lambda s: {"webhook": {"url": f"{s.url}/tickets"}},
        answerdesk_hook,
        lambda key: {**event, "id": "e1", "ticket": key, "text": "Try the portal reset page."},
        lambda key: {**event, "id": "e2", "ticket": key, "public": False, "text": "secret note"},
        lambda key: {
            "id": "e3",
            "ticket": key,
            "type": "status",
            "status": "Done",
            "resolved": True,
        },
        lambda created: json.dumps(created["body"]),
    )


# --- nothing lost: the provider down, back, and a restart in between ---------------------------


async def test_provider_down_the_user_hears_it_is_queued_and_the_ticket_follows_even_a_restart(
    demo_settings: Settings, double: SlackApiDouble, slack_env: pytest.MonkeyPatch
) -> None:
    first, second = "1700001300.000100", "1700001400.000100"
    with ZendeskDouble() as zendesk:
        slack_env.setenv("ZENDESK_EMAIL", zendesk.email)
        slack_env.setenv("ZENDESK_API_TOKEN", zendesk.token)
        settings = configured(
            demo_settings.data_dir, double, provider="zendesk", zendesk={"base_url": zendesk.url}
        )
        zendesk.down()
        async with running(settings) as (url, services):
            request_id = await ask(url, double, first)
            await send(url, human(request_id, first))
            queued = await posted(double, "queued", thread=first)
            [ticket] = await services.tickets.list()
            assert ticket["delivery"] == "queued" and ticket["key"] is None
            assert ticket["attempts"] >= 1 and "ClientConnectorError" in ticket["last_error"]
            zendesk.up()
            later = await posted(double, "now ticket 35436", thread=first)

            zendesk.down()
            request_id = await ask(url, double, second)
            await send(url, human(request_id, second))
            await posted(double, "queued", thread=second)
        # The service stops with the second ticket still queued; the system comes back; a
        # new process delivers it.
        zendesk.up()
        async with running(settings) as (url, services):
            restarted = await posted(double, "now ticket 35437", thread=second)
            tickets = await services.tickets.list()

    assert "Zendesk can't be reached" in queued["text"] and "35436" not in queued["text"]
    assert "35436" in json.dumps(later["blocks"])
    assert restarted["thread_ts"] == second
    assert [t["key"] for t in tickets] == ["35437", "35436"]
    assert {t["delivery"] for t in tickets} == {"delivered"}
    assert len(zendesk.created) == 2
    [ticket_a, ticket_b] = zendesk.created
    assert ticket_a["requester"] == {"name": "Jordan Kim", "email": JORDAN_EMAIL}
    assert ticket_a["comment"]["public"] is False and QUESTION in ticket_a["comment"]["body"]
    assert ticket_a["external_id"] != ticket_b["external_id"]
    keys = [
        r["headers"]["Idempotency-Key"] for r in zendesk.requests_to("POST", "/api/v2/tickets.json")
    ]
    assert keys == sorted(keys, key=keys.index) and len(set(keys)) == 2


async def test_asking_for_a_human_in_the_thread_hands_off_and_the_key_follows_there(
    demo_settings: Settings, double: SlackApiDouble, slack_env: pytest.MonkeyPatch
) -> None:
    """The answer flow's own handoff (no button): the thread's reference travels with it."""
    thread = "1700001450.000100"
    slack_env.setenv("ANSWERDESK_WEBHOOK_SECRET", "receiver-secret")
    with WebhookReceiver(secret="receiver-secret") as receiver:
        settings = configured(
            demo_settings.data_dir,
            double,
            provider="webhook",
            webhook={"url": f"{receiver.url}/tickets"},
        )
        receiver.down()
        async with running(settings) as (url, _):
            request_id = await ask(url, double, thread, "Can I talk to a human please?")
            answer = double.calls_to("chat.update")[-1]["args"]
            receiver.up()
            later = await posted(double, "now ticket DESK-1", thread=thread)
    assert "queued" in answer["text"] and "DESK-1" not in answer["text"]
    assert later["thread_ts"] == thread
    [created] = receiver.created
    assert created["body"]["ticket"]["request_id"] == request_id
    assert created["body"]["ticket"]["conversation"]["link"].endswith(f"{PUBLIC_CHANNEL}-{thread}")
    assert created["body"]["ticket"]["trigger"] == "asked for a human"


# --- rate limits, persistent failures ---------------------------------------------------------


async def test_retry_after_is_honoured_and_a_failing_delivery_is_visible_never_dropped(
    demo_settings: Settings,
    double: SlackApiDouble,
    slack_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    thread, broken = "1700001500.000100", "1700001600.000100"
    with ServiceNowDouble(users={JORDAN_EMAIL: SYS_ID}) as snow:
        slack_env.setenv("SNOW_CLIENT_ID", snow.client_id)
        slack_env.setenv("SNOW_CLIENT_SECRET", snow.client_secret)
        settings = configured(
            demo_settings.data_dir,
            double,
            provider="servicenow",
            servicenow={
                "base_url": snow.url,
                "client_id_env": "SNOW_CLIENT_ID",
                "client_secret_env": "SNOW_CLIENT_SECRET",
                "assignment_group": "Service Desk",
            },
            delivery={"failing_after": 3},
        )
        async with running(settings) as (url, services):
            snow.fail("429:1")
            request_id = await ask(url, double, thread)
            await send(url, human(request_id, thread))
            await posted(double, "queued", thread=thread)
            await posted(double, "now ticket INC0010001", thread=thread)

            snow.fail(*["400"] * 50)
            with capture_logs() as logs:
                broken_id = await ask(url, double, broken)
                await send(url, human(broken_id, broken))
                await posted(double, "queued", thread=broken)
                failing = await until(lambda: _failing(services), timeout=30)
            listed = await asyncio.to_thread(
                run,
                tmp_path,
                "tickets",
                "list",
                "--failed",
                "--json",
                env={"ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)},
            )
            counts = await services.handoff.handoffs.counts()

    posts = snow.requests_to("POST", "/api/now/table/incident")
    assert posts[1]["at"] - posts[0]["at"] >= 1.0  # Retry-After: 1
    incident = snow.created[0]
    assert incident["number"] == "INC0010001" and incident["caller_id"] == SYS_ID
    assert incident["assignment_group"] == "Service Desk"
    assert QUESTION in incident["description"] and incident["short_description"] == QUESTION
    for needle in (request_id, f"{URL_BASE}/traces/{request_id}", JORDAN_EMAIL, "app.slack.com"):
        assert needle in incident["work_notes"], needle
    assert len(incident["correlation_id"]) == 32
    api = [r for r in snow.requests if r["path"].startswith("/api/")]
    assert api and all(r["headers"]["Authorization"].startswith("Bearer ") for r in api)

    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["request_id"] == broken_id and row["delivery"] == "failing"
    assert "HTTP 400" in row["last_error"] and row["attempts"] >= 1
    assert failing["delivery"] == "failing"
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["ticket delivery failing"]
    assert errors[0]["handoff"] == row["id"] and "HTTP 400" in errors[0]["error"]
    assert counts["tickets"]["failing"] == 1 and counts["tickets"]["delivered"] == 1


async def _failing(services: Any) -> dict | None:
    rows = await services.tickets.list(failed=True)
    return rows[0] if rows else None


# --- several replicas on one PostgreSQL -------------------------------------------------------


@pytest.mark.postgres
async def test_two_replicas_and_retried_clicks_open_one_ticket(
    demo_settings: Settings, double: SlackApiDouble, jira: JiraDouble, postgres_url: str
) -> None:
    from core.acl import load_policy
    from tests.conftest import DEMO

    settings = jira_settings(demo_settings.data_dir, double, jira).model_copy(
        update={"database_url": postgres_url, "chroma_collection": "pg_handoff"}
    )
    seed = await build_services(settings)
    await seed.ingestor.ingest([DEMO / "corpus" / "it"], load_policy(DEMO / "acl.yaml"))
    await seed.close()
    thread = "1700001700.000100"
    async with running(settings) as (one, services), running(settings) as (two, _):
        request_id = await ask(one, double, thread, "How long does a guest Wi-Fi pass last?")
        click = human(request_id, thread)
        replies = await asyncio.gather(*(send(url, click) for url in (one, two, one, two)))
        assert [status for status, _ in replies] == [200] * 4
        await posted(double, "HELP-1", thread=thread)
        await asyncio.sleep(1.5)
        tickets = await services.tickets.list()
    assert len(jira.created) == 1 and len(jira.requests_to("POST", "/rest/api/3/issue")) == 1
    assert [t["key"] for t in tickets] == ["HELP-1"]
    assert sum("A person will follow up" in text for text in texts(double)) == 1


# --- the built-in queue, answered from the command line -----------------------------------------


async def test_builtin_agents_show_reply_and_resolve_from_the_command_line(
    demo_settings: Settings,
    double: SlackApiDouble,
    slack_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    thread = "1700001800.000100"
    config = tmp_path / "answerdesk.yaml"
    config.write_text(
        f"data_dir: {demo_settings.data_dir}\n"
        f"slack:\n  api_base_url: {double.url}\n  post_interval_s: 0.01\n"
    )

    async def cli(*args: str) -> Any:
        return await asyncio.to_thread(
            run, tmp_path, "tickets", *args, env={"ANSWERDESK_CONFIG": str(config)}
        )

    settings = configured(demo_settings.data_dir, double)
    async with running(settings) as (url, _):
        request_id = await ask(url, double, thread)
        await send(url, human(request_id, thread))
        await posted(double, "AD-1", thread=thread)
        shown = await cli("show", "AD-1", "--json")
        replied = await cli(
            "reply", "AD-1", "Your **new** pass is at the front desk.", "--as", "Kim", "--json"
        )
        resolved = await cli("resolve", "AD-1", "--json")
        unknown = await cli("reply", "AD-99", "hello")
        empty = await cli("reply", "AD-1", "  ")
        text_mode = await cli("show", "AD-1")
        trace = await asyncio.to_thread(
            run,
            tmp_path,
            "trace",
            "show",
            request_id,
            "--json",
            env={"ANSWERDESK_CONFIG": str(config)},
        )

    assert shown.returncode == 0, shown.stderr
    ticket = json.loads(shown.stdout)
    assert ticket["provider"] == "builtin" and ticket["key"] == "AD-1" and ticket["messages"] == []
    assert ticket["content"]["question"] == QUESTION
    assert replied.returncode == 0, replied.stderr
    reply = json.loads(replied.stdout)
    assert [m["delivery"] for m in reply["messages"]] == ["delivered"]
    in_thread = await posted(double, "front desk", thread=thread)
    assert "Kim" in in_thread["text"]
    done = json.loads(resolved.stdout)
    assert done["ticket"]["status"] == "closed" and done["messages"][0]["delivery"] == "delivered"
    await posted(double, "AD-1 was resolved", thread=thread)
    for bad, needle in ((unknown, "AD-99"), (empty, "empty")):
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
        assert needle in bad.stderr
    assert "AD-1" in text_mode.stdout and "front desk" in text_mode.stdout
    outcome = json.loads(trace.stdout)["ticket"]
    assert outcome["id"] == "AD-1" and outcome["status"] == "closed"
    assert outcome["first_response_s"] is not None and outcome["resolution_s"] is not None


# --- the webhook, from the command line: signed, verifiable, redacted -------------------------


def _webhook_config(tmp_path: Path, data_dir: Path, url: str, redaction: str) -> Path:
    config = tmp_path / f"webhook-{redaction}.yaml"
    config.write_text(
        f"data_dir: {data_dir}\n"
        f"tickets: {{url_base: '{URL_BASE}'}}\n"
        f"tracing: {{redaction: {redaction}}}\n"
        "handoff:\n"
        "  provider: webhook\n"
        f"  webhook: {{url: '{url}/tickets'}}\n"
    )
    return config


def test_webhook_tickets_are_signed_verifiable_and_redacted(
    demo_settings: Settings, tmp_path: Path
) -> None:
    secret = "receiver-shared-secret"
    pii = "Talk to a human please: call me on 415-555-0132 or write to jo.private@gmail.com"
    with WebhookReceiver(secret=secret) as receiver:
        outputs = []
        for redaction in ("pii", "all"):
            config = _webhook_config(tmp_path, demo_settings.data_dir, receiver.url, redaction)
            env = {"ANSWERDESK_CONFIG": str(config), "ANSWERDESK_WEBHOOK_SECRET": secret}
            done = run(tmp_path, "ask", pii, "--as", JORDAN_EMAIL, "--json", env=env)
            assert done.returncode == 0, done.stderr
            outputs.append(json.loads(done.stdout))
        trace = run(tmp_path, "trace", "show", outputs[0]["request_id"], "--json", env=env)
        requests = receiver.requests_to("POST", "/tickets")

    assert [o["ticket"]["id"] for o in outputs] == ["DESK-1", "DESK-2"]
    assert all(o["ticket"]["delivery"] == "delivered" for o in outputs)
    assert "DESK-1" in outputs[0]["text"]
    assert json.loads(trace.stdout)["ticket"]["id"] == "DESK-1"
    readme_verify = _readme_verifier()
    for request in requests:
        headers, raw = request["headers"], request["raw"]
        assert verify_answerdesk_signature(secret, headers, raw)
        assert readme_verify(secret, headers, raw)  # the receiver the README shows
        stale_at = int(headers["X-Answerdesk-Timestamp"]) + 301
        assert not readme_verify(secret, headers, raw, now=stale_at)
        assert not readme_verify(secret, headers, raw.replace(b"AD-", b"AX-"))
        assert not verify_answerdesk_signature("other-secret", headers, raw)
        assert not verify_answerdesk_signature(secret, headers, raw + b" ")
        stale = int(headers["X-Answerdesk-Timestamp"]) + 301
        assert not verify_answerdesk_signature(secret, headers, raw, now=stale)
        assert headers["Idempotency-Key"]
    pii_body, all_body = (json.loads(r["raw"]) for r in requests)
    assert pii_body["type"] == "ticket.created" and pii_body["id"].startswith("AD-")
    ticket = pii_body["ticket"]
    assert ticket["request_id"] == outputs[0]["request_id"]
    assert ticket["trace_url"] == f"{URL_BASE}/traces/{outputs[0]['request_id']}"
    assert ticket["trigger"] == "asked for a human"
    assert ticket["asker"]["email"] == JORDAN_EMAIL  # whom the ticket is for
    raw_text = json.dumps(pii_body)
    assert "415-555-0132" not in raw_text and "jo.private@gmail.com" not in raw_text
    assert "[phone]" in ticket["question"] and "[email]" in ticket["question"]
    # (the answer flow redacted PII before the handoff; `all` then hides the rest)
    hidden = f"[redacted: {len(redact_pii(pii).text)} characters]"
    assert all_body["ticket"]["question"] == hidden
    assert "Talk to a human" not in json.dumps(all_body)


def _readme_verifier() -> Callable[..., bool]:
    """The receiver's `verify` from the README's "Webhook" section, as a reader copies it."""
    from tests.integration.test_readme_examples import blocks, section

    [code] = blocks(section("### Webhook"), "python")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace["verify"]


# --- configuration ------------------------------------------------------------------------------


def test_config_check_names_the_handoff_variables_and_refuses_secrets_in_the_file(
    tmp_path: Path,
) -> None:
    config = tmp_path / "answerdesk.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        "handoff:\n"
        "  provider: jira\n"
        "  jira: {base_url: 'https://acme.atlassian.net', project_key: HELP}\n"
        "  announce_channel: C0ESCALATE\n"
    )
    env = {"ANSWERDESK_CONFIG": str(config)}
    missing = run(tmp_path, "config", "check", "--json", env=env)
    assert missing.returncode == 2
    report = json.loads(missing.stdout)
    assert report["problems"] == [
        "handoff: jira at https://acme.atlassian.net: JIRA_EMAIL, JIRA_API_TOKEN not set"
    ]
    present = {**env, "JIRA_EMAIL": "bot@acme.example", "JIRA_API_TOKEN": "tok-123-secret"}
    done = run(tmp_path, "config", "check", "--json", env=present)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["handoff"]["status"] == "ok" and "C0ESCALATE" in checks["handoff"]["detail"]
    assert checks["handoff.loopback"]["status"] == "off"
    assert "JIRA_WEBHOOK_SECRET" in checks["handoff.loopback"]["detail"]
    assert report["effective"]["handoff"]["jira"]["token"] == "**********"
    assert "tok-123-secret" not in done.stdout + done.stderr

    config.write_text(config.read_text() + "  webhook: {secret: abc}\n")
    refused = run(tmp_path, "config", "check", env=env)
    assert refused.returncode == 2
    assert "handoff.webhook.secret: secrets are read only from the environment" in refused.stderr
    assert "secret_env" in refused.stderr

    config.write_text(f"data_dir: {tmp_path / 'var'}\nhandoff: {{provider: zendesk}}\n")
    unconfigured = run(tmp_path, "tickets", "list", env=env)
    assert unconfigured.returncode == 2
    assert "handoff.zendesk.base_url is required" in unconfigured.stderr
