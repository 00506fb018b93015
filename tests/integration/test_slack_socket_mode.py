"""Socket Mode over a real WebSocket: the service's slack_sdk client opens the connection
through the Web API double's `apps.connections.open`, the double pushes envelopes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from bot.settings import Settings
from bot.wiring import Services
from tests.integration.test_slack import JORDAN, PRIYA, PUBLIC_CHANNEL, settle
from tests.support.service import running
from tests.support.slack_api import app_mention, block_action, event_payload
from tests.support.slack_socket import SlackSocketDouble


@pytest.fixture(scope="module")
def socket_double() -> Iterator[SlackSocketDouble]:
    with SlackSocketDouble(bot_token="xoxb-test", app_token="xapp-test") as double:
        yield double


@pytest.fixture
def double(socket_double: SlackSocketDouble) -> SlackSocketDouble:
    socket_double.reset(directory=True)
    socket_double.add_user(PRIYA, "priya.raman@harborlight.example")
    socket_double.add_user(JORDAN, "jordan.kim@harborlight.example")
    socket_double.add_channel(PUBLIC_CHANNEL, kind="public", members=[PRIYA, JORDAN])
    return socket_double


def socket_settings(demo_settings: Settings, double: SlackSocketDouble) -> Settings:
    return Settings(
        data_dir=demo_settings.data_dir,
        slack={"api_base_url": double.url, "post_interval_s": 0.01, "socket_mode": True},
    )


@pytest.fixture
async def service(
    demo_settings: Settings, double: SlackSocketDouble, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Services]]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)  # not needed over a socket
    before = double.connections
    async with running(socket_settings(demo_settings, double)) as pair:
        await asyncio.to_thread(double.wait_connected)
        assert double.connections == before + 1
        yield pair


def mention(text: str, ts: str, event_id: str) -> dict:
    event = app_mention(f"<@UBOT> {text}", user=JORDAN, channel=PUBLIC_CHANNEL, ts=ts)
    return event_payload(event, event_id=event_id)


async def test_event_is_acked_then_answered_once_despite_redelivery(
    service: tuple[str, Services], double: SlackSocketDouble
) -> None:
    _, services = service
    payload = mention("How long does a guest Wi-Fi pass last?", "1700000100.000100", "EvS-1")
    envelope = double.push("events_api", payload)
    ack = await asyncio.to_thread(double.wait_acked, envelope)
    assert "payload" not in ack  # an event ack carries nothing
    retry = double.push("events_api", payload, retry_attempt=1)
    await asyncio.to_thread(double.wait_acked, retry)
    await settle(double)
    assert len(double.calls_to("chat.postMessage")) == 1
    update = double.calls_to("chat.update")[0]["args"]
    assert update["channel"] == PUBLIC_CHANNEL
    assert "Wi-Fi" in json.dumps(update["blocks"]) or "guest" in json.dumps(update["blocks"])
    placeholder = double.calls_to("chat.postMessage")[0]["args"]
    assert placeholder["thread_ts"] == "1700000100.000100"
    request_id = next(
        e["value"]
        for b in update["blocks"]
        for e in b.get("elements", [])
        if e.get("type") == "button"
    )
    trace = await services.traces.get(request_id)
    assert trace is not None and trace["platform"] == "slack"
    # Every Web API call went to the double with the bot token; only the socket URL call
    # used the app-level token.
    opened = double.calls_to("apps.connections.open")
    assert opened and opened[-1]["headers"]["authorization"] == "Bearer xapp-test"
    assert all(
        c["headers"]["authorization"] == "Bearer xoxb-test"
        for c in double.calls
        if c["method"] != "apps.connections.open"
    )


async def test_interactivity_over_the_socket(
    service: tuple[str, Services], double: SlackSocketDouble
) -> None:
    _, services = service
    double.push("events_api", mention("How do I reset my Okta password?", "1700000100.2", "EvS-2"))
    await settle(double)
    blocks = double.calls_to("chat.update")[0]["args"]["blocks"]
    request_id = next(
        e["value"] for b in blocks for e in b.get("elements", []) if e.get("type") == "button"
    )
    body = block_action(
        "answerdesk_feedback_down",
        request_id,
        user=JORDAN,
        channel=PUBLIC_CHANNEL,
        message_ts="1700000100.3",
        thread_ts="1700000100.2",
    )
    action = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
    envelope = double.push("interactive", action)
    await asyncio.to_thread(double.wait_acked, envelope)
    from adapters.db.conversations import SqlConversationStore

    store = SqlConversationStore(services.engine)
    deadline = time.monotonic() + 30
    while not await store.feedback_for(request_id):
        assert time.monotonic() < deadline, "feedback not stored"
        await asyncio.sleep(0.05)
    assert await store.feedback_for(request_id) == [{"user": JORDAN, "value": -1}]


async def test_reconnects_when_slack_asks_and_keeps_answering(
    service: tuple[str, Services], double: SlackSocketDouble
) -> None:
    before = double.connections
    double.disconnect("refresh_requested")
    deadline = time.monotonic() + 30
    while double.connections == before or double.connected() == 0:
        assert time.monotonic() < deadline, "no reconnection after `disconnect`"
        await asyncio.sleep(0.05)
    double.push("events_api", mention("When do I get a new laptop?", "1700000100.4", "EvS-3"))
    await settle(double)
    assert len(double.calls_to("chat.update")) == 1


async def test_http_events_are_off_and_readiness_reports_the_socket(
    service: tuple[str, Services],
) -> None:
    url, _ = service
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/slack/events", data=b"{}") as response:
            assert response.status == 503
            assert "Socket Mode" in (await response.json())["error"]
        async with session.get(f"{url}/readyz") as response:
            assert (await response.json())["checks"]["slack_socket"] == "connected"


async def test_missing_app_token_leaves_slack_off_and_the_service_up(
    demo_settings: Settings,
    double: SlackSocketDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    async with (
        running(socket_settings(demo_settings, double)) as (url, _),
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{url}/slack/events", data=b"{}") as response:
            assert response.status == 503
            assert "SLACK_APP_TOKEN" in (await response.json())["error"]
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200


async def test_a_wrong_app_token_never_blocks_the_service(
    demo_settings: Settings,
    double: SlackSocketDouble,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-revoked")
    async with (
        running(socket_settings(demo_settings, double)) as (url, _),
        aiohttp.ClientSession() as session,
    ):
        deadline = time.monotonic() + 30
        while not double.calls_to("apps.connections.open"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert double.calls_to("apps.connections.open")[0]["response"]["error"] == "invalid_auth"
        assert double.connected() == 0
        async with session.get(f"{url}/readyz") as response:
            checks = (await response.json())["checks"]
            assert checks["slack_socket"] == "connecting"
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200
    assert "Failed to connect" in caplog.text  # slack_sdk said why, through our logger
    assert "xapp-revoked" not in caplog.text
