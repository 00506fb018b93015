"""The Slack adapter over real HTTP: signed requests into the running aiohttp app, the
service's slack_sdk clients calling a local Slack Web API double."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from bot.settings import Settings
from bot.wiring import Services, build_services
from tests.support.service import running
from tests.support.slack_api import (
    SlackApiDouble,
    app_mention,
    block_action,
    dm_message,
    event_payload,
    signed_headers,
)

SECRET = "test-signing-secret"
PRIYA, JORDAN, CEO = "U02PRAMAN7", "U03JKIM8QX", "U01HLCEO01"  # demo directory ids
STRANGER = "U09STRANGE"  # not in the directory; users.info knows the email
HR_CHANNEL, PUBLIC_CHANNEL, DM = "G0HRPRIV", "C0GENERAL", "D0PRIYA"
SALARY = "<@UBOT> What is the salary range for an L3 engineer in the Portland area?"
FIGURES = ("$72,000", "$90,000", "$108,000")


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-test") as double:
        yield double


@pytest.fixture
def double(slack_api: SlackApiDouble) -> SlackApiDouble:
    slack_api.reset(directory=True)
    slack_api.add_user(PRIYA, "priya.raman@harborlight.example")
    slack_api.add_user(JORDAN, "jordan.kim@harborlight.example")
    slack_api.add_user(CEO, "ceo@harborlight.example")
    slack_api.add_user(STRANGER, "stranger@harborlight.example")
    slack_api.add_channel(HR_CHANNEL, kind="private", members=[PRIYA, JORDAN, "UBOT"])
    slack_api.add_channel(PUBLIC_CHANNEL, kind="public", members=[PRIYA, JORDAN])
    slack_api.add_channel(DM, kind="im", members=[PRIYA])
    return slack_api


@pytest.fixture
async def service(
    demo_settings: Settings, double: SlackApiDouble, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Services]]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    settings = Settings(
        data_dir=demo_settings.data_dir,
        slack={"api_base_url": double.url, "post_interval_s": 0.01},
    )
    async with running(settings) as pair:
        yield pair


async def send(url: str, payload: dict | bytes, **headers: object) -> tuple[int, dict]:
    form = isinstance(payload, bytes)
    body = payload if form else json.dumps(payload).encode()
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    signed = signed_headers(SECRET, body, content_type=content_type, **headers)  # type: ignore[arg-type]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/slack/events", data=body, headers=signed) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else {}


async def settle(double: SlackApiDouble, method: str = "chat.update", count: int = 1) -> None:
    """Wait (bounded) for the background work to reach the Slack double."""
    deadline = time.monotonic() + 60
    while len(double.calls_to(method)) < count:
        assert time.monotonic() < deadline, f"no {method} within 60 s: {double.calls}"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


def final_text(double: SlackApiDouble) -> str:
    return json.dumps(double.messages())


async def test_bad_requests(service: tuple[str, Services], double: SlackApiDouble) -> None:
    url, _ = service
    body = json.dumps({"type": "url_verification", "challenge": "abc"}).encode()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/slack/events", data=body) as response:
            assert response.status == 401  # no signature
        bad = signed_headers("wrong-secret", body)
        async with session.post(f"{url}/slack/events", data=body, headers=bad) as response:
            assert response.status == 401
        stale = signed_headers(SECRET, body, timestamp=int(time.time()) - 400)
        async with session.post(f"{url}/slack/events", data=body, headers=stale) as response:
            assert response.status == 401
        garbage = b"{not json"
        async with session.post(
            f"{url}/slack/events", data=garbage, headers=signed_headers(SECRET, garbage)
        ) as response:
            assert response.status == 400
            assert "error" in await response.json()
    status, reply = await send(url, {"type": "url_verification", "challenge": "abc"})
    assert (status, reply) == (200, {"challenge": "abc"})
    status, _ = await send(
        url, event_payload({"type": "reaction_added", "user": JORDAN}, event_id="Ev-unknown")
    )
    assert status == 200
    assert double.calls_to("chat.postMessage") == []


async def test_not_configured_answers_503(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    async with running(demo_settings) as (url, _), aiohttp.ClientSession() as session:
        async with session.post(f"{url}/slack/events", data=b"{}") as response:
            assert response.status == 503
            assert "SLACK_BOT_TOKEN" in (await response.json())["error"]
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200


async def test_mention_is_acked_first_then_answered_in_the_thread(
    service: tuple[str, Services], double: SlackApiDouble
) -> None:
    url, services = service
    event = app_mention(
        "<@UBOT> How long does a guest Wi-Fi pass last?",
        user=JORDAN,
        channel=PUBLIC_CHANNEL,
        ts="1700000000.000100",
    )
    status, _ = await send(url, event_payload(event, event_id="Ev-1"))
    assert status == 200
    await settle(double)
    posted = double.calls_to("chat.postMessage")[0]["args"]
    assert posted["thread_ts"] == "1700000000.000100"
    assert "Looking into it" in posted["text"]
    update = double.calls_to("chat.update")[0]["args"]
    blocks = update["blocks"]
    assert len(blocks) <= 50 and update["text"]
    assert any("wifi-guests" in json.dumps(b) or "Guest" in json.dumps(b) for b in blocks)
    assert "request" in json.dumps(blocks[-1])
    assert posted.get("unfurl_links") is False
    trace = await services.traces.get(_request_id(blocks))
    assert trace is not None and trace["platform"] == "slack" and trace["audience"] == "public"


def _request_id(blocks: list[dict]) -> str:
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button":
                return element["value"]
    raise AssertionError("no buttons")


async def test_retries_are_answered_once(
    service: tuple[str, Services], double: SlackApiDouble
) -> None:
    url, _ = service
    payload = event_payload(
        app_mention(
            "<@UBOT> How do I reset my Okta password?",
            user=JORDAN,
            channel=PUBLIC_CHANNEL,
            ts="1700000000.000200",
        ),
        event_id="Ev-2",
    )
    assert (await send(url, payload))[0] == 200
    status, _ = await send(url, payload, retry_num=1, retry_reason="http_timeout")
    assert status == 200
    await settle(double)
    assert len(double.calls_to("chat.postMessage")) == 1
    # The `message` copy of the mention, bot messages and edits are ignored.
    copy = {
        "type": "message",
        "channel_type": "channel",
        "user": JORDAN,
        "channel": PUBLIC_CHANNEL,
        "text": "<@UBOT> How do I reset my Okta password?",
        "ts": "1700000000.000200",
    }
    edit = {**copy, "subtype": "message_changed", "ts": "1700000000.000300"}
    bot = {**copy, "bot_id": "B1", "ts": "1700000000.000400"}
    for number, event in enumerate((copy, edit, bot)):
        assert (await send(url, event_payload(event, event_id=f"Ev-2-{number}")))[0] == 200
    await asyncio.sleep(1.0)
    assert len(double.calls_to("chat.postMessage")) == 1


async def test_private_channel_gets_no_hr_content_and_the_asker_can_get_it_privately(
    service: tuple[str, Services], double: SlackApiDouble
) -> None:
    url, _ = service
    event = app_mention(SALARY, user=PRIYA, channel=HR_CHANNEL, ts="1700000000.000500")
    await send(url, event_payload(event, event_id="Ev-3"))
    await settle(double)
    shared = final_text(double)
    assert not any(figure in shared for figure in FIGURES)
    assert "compensation-bands" not in shared
    assert "privately" in shared  # the notice and the button
    request_id = _request_id(double.calls_to("chat.update")[0]["args"]["blocks"])
    action = block_action(
        "answerdesk_send_private",
        request_id,
        user=PRIYA,
        channel=HR_CHANNEL,
        message_ts="1700000000.000600",
        thread_ts="1700000000.000500",
    )
    assert (await send(url, action))[0] == 200
    await settle(double, "chat.postEphemeral")
    ephemeral = double.calls_to("chat.postEphemeral")[0]["args"]
    assert ephemeral["user"] == PRIYA
    assert any(figure in json.dumps(ephemeral) for figure in FIGURES)
    # Someone else pressing the button gets nothing.
    other = block_action(
        "answerdesk_send_private",
        request_id,
        user=JORDAN,
        channel=HR_CHANNEL,
        message_ts="1700000000.000600",
        thread_ts="1700000000.000500",
    )
    await send(url, other)
    await asyncio.sleep(0.5)
    assert len(double.calls_to("chat.postEphemeral")) == 1


async def test_dm_answers_with_the_askers_own_permissions(
    service: tuple[str, Services], double: SlackApiDouble
) -> None:
    url, _ = service
    event = dm_message(
        SALARY.replace("<@UBOT> ", ""), user=PRIYA, channel=DM, ts="1700000000.000700"
    )
    await send(url, event_payload(event, event_id="Ev-4"))
    await settle(double)
    assert any(figure in final_text(double) for figure in FIGURES)


async def test_unknown_user_is_resolved_by_email_once(
    service: tuple[str, Services], double: SlackApiDouble
) -> None:
    url, _ = service
    for number in range(2):
        event = dm_message(
            "How long does a guest Wi-Fi pass last?",
            user=STRANGER,
            channel="D0STR",
            ts=f"1700000001.00010{number}",
        )
        double.add_channel("D0STR", kind="im", members=[STRANGER])
        await send(url, event_payload(event, event_id=f"Ev-5-{number}"))
        await settle(double, count=number + 1)
    calls = [c for c in double.calls_to("users.info") if c["args"].get("user") == STRANGER]
    assert len(calls) == 1  # then cached in the database


async def test_feedback_human_handoff_and_follow_ups(
    service: tuple[str, Services], double: SlackApiDouble
) -> None:
    url, services = service
    thread = "1700000002.000100"
    event = app_mention(
        "<@UBOT> What is the deductible on Harborlight Basic?",
        user=JORDAN,
        channel=PUBLIC_CHANNEL,
        ts=thread,
    )
    await send(url, event_payload(event, event_id="Ev-6"))
    await settle(double)
    request_id = _request_id(double.calls_to("chat.update")[0]["args"]["blocks"])

    async def click(action_id: str, user: str) -> None:
        body = block_action(
            action_id,
            request_id,
            user=user,
            channel=PUBLIC_CHANNEL,
            message_ts="x",
            thread_ts=thread,
        )
        await send(url, body)

    await click("answerdesk_feedback_up", CEO)
    for user in (JORDAN, PRIYA):
        await click("answerdesk_feedback_down", user)
    await settle(double, "chat.postMessage", 2)  # the offer of a human after two 👎
    assert "person" in double.calls_to("chat.postMessage")[1]["args"]["text"]
    await click("answerdesk_feedback_down", STRANGER)
    from adapters.db.conversations import SqlConversationStore

    store = SqlConversationStore(services.engine)
    deadline = time.monotonic() + 30
    while len(await store.feedback_for(request_id)) < 4:
        assert time.monotonic() < deadline, "the third 👎 was not stored"
        await asyncio.sleep(0.05)
    votes = await store.feedback_for(request_id)
    assert sorted(v["value"] for v in votes) == [-1, -1, -1, 1]
    await asyncio.sleep(0.5)
    offers = [c for c in double.calls_to("chat.postMessage") if "person" in c["args"]["text"]]
    assert len(offers) == 1  # once per thread, however many 👎 arrive together or later
    await click("answerdesk_talk_to_human", JORDAN)
    await settle(double, "chat.postMessage", 3)
    tickets = await services.tickets.list()
    assert tickets[0]["request_id"] == request_id
    assert tickets[0]["id"] in double.calls_to("chat.postMessage")[2]["args"]["text"]
    # A reply in the bot's thread is a follow-up and is answered; elsewhere it is not.
    follow = {
        "type": "message",
        "channel_type": "channel",
        "user": JORDAN,
        "channel": PUBLIC_CHANNEL,
        "text": "and for Plus?",
        "ts": "1700000002.000900",
        "thread_ts": thread,
    }
    await send(url, event_payload(follow, event_id="Ev-7"))
    await settle(double, "chat.update", 2)
    stray = {**follow, "ts": "1700000003.000100", "thread_ts": "1700000003.000000"}
    await send(url, event_payload(stray, event_id="Ev-8"))
    await asyncio.sleep(1.0)
    assert len(double.calls_to("chat.update")) == 2


async def test_a_429_storm_still_ends_in_one_answer(
    service: tuple[str, Services], double: SlackApiDouble
) -> None:
    url, _ = service
    double.fail("chat.postMessage", "429:0", "429:0", "429:0")
    double.fail("chat.update", "429:0", "500")
    event = app_mention(
        "<@UBOT> What portal address do I enter in GlobalProtect?",
        user=JORDAN,
        channel=PUBLIC_CHANNEL,
        ts="1700000004.000100",
    )
    await send(url, event_payload(event, event_id="Ev-9"))
    await settle(double)
    deadline = time.monotonic() + 30
    while not any(c["status"] == 200 for c in double.calls_to("chat.update")):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert len(double.messages()) == 1
    assert "vpn" in final_text(double).lower()


@pytest.mark.postgres
async def test_two_instances_on_one_database_answer_once(
    demo_settings: Settings,
    double: SlackApiDouble,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    from core.acl import load_policy
    from tests.conftest import DEMO

    settings = Settings(
        data_dir=demo_settings.data_dir,
        database_url=postgres_url,
        chroma_collection="pg_chunks",
        slack={"api_base_url": double.url, "post_interval_s": 0.01},
    )
    seed = await build_services(settings)
    await seed.ingestor.ingest([DEMO / "corpus" / "it"], load_policy(DEMO / "acl.yaml"))
    await seed.close()
    payload = event_payload(
        app_mention(
            "<@UBOT> How long does a guest Wi-Fi pass last?",
            user=JORDAN,
            channel=PUBLIC_CHANNEL,
            ts="1700000005.000100",
        ),
        event_id="Ev-10",
    )
    async with running(settings) as (one, _), running(settings) as (two, _):
        replies = await asyncio.gather(
            send(one, payload),
            send(two, payload),
            send(one, payload, retry_num=1),
            send(two, payload, retry_num=2),
        )
        assert [status for status, _ in replies] == [200, 200, 200, 200]
        await settle(double)
        await asyncio.sleep(1.0)
    assert len(double.calls_to("chat.postMessage")) == 1
