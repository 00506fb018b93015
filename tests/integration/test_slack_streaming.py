"""Streamed answers in Slack, through the real aiohttp app, the Slack Web API double and a
model double that streams: start/append/stop with the final blocks, the fallbacks when
Slack refuses a stream, revisions, a tier failing mid-stream, cache hits posted whole,
Slack's feedback buttons, assistant statuses and suggested prompts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.db.conversations import SqlConversationStore
from adapters.slack.stream import StreamConfig
from bot.settings import Settings
from bot.wiring import Services
from core.answering.types import Asker, Audience, Question
from tests.integration.test_slack import (
    CEO,
    DM,
    JORDAN,
    PRIYA,
    PUBLIC_CHANNEL,
    STRANGER,
    send,
    settle,
)
from tests.support.model_server import ModelServer
from tests.support.service import running
from tests.support.slack_api import (
    SlackApiDouble,
    app_mention,
    assistant_thread_started,
    block_action,
    dm_message,
    event_payload,
)

QUESTION = "How long does a guest Wi-Fi pass last?"
WIFI = "<@UBOT> " + QUESTION
SLACK_CALLS = ("chat.", "assistant.")


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    with ModelServer() as running_model:
        yield running_model


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-test") as running_double:
        yield running_double


@pytest.fixture
def double(slack_api: SlackApiDouble) -> SlackApiDouble:
    slack_api.reset(directory=True)
    for user, email in (
        (PRIYA, "priya.raman@harborlight.example"),
        (JORDAN, "jordan.kim@harborlight.example"),
        (CEO, "ceo@harborlight.example"),
        (STRANGER, "stranger@harborlight.example"),
    ):
        slack_api.add_user(user, email)
    slack_api.add_channel(PUBLIC_CHANNEL, kind="public", members=[PRIYA, JORDAN])
    slack_api.add_channel(DM, kind="im", members=[PRIYA])
    return slack_api


def settings_for(
    demo_settings: Settings, double: SlackApiDouble, model: ModelServer, **overrides: object
) -> Settings:
    slack = {
        "api_base_url": double.url,
        "post_interval_s": 0.01,
        "stream_interval_s": 0.2,
        "assistant": {"status_delay_s": 0},
        **overrides.pop("slack", {}),  # type: ignore[dict-item]
    }
    tiers = [
        {
            "name": name,
            "model": f"openai/{name}",
            "api_base": model.url,
            "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
            "timeout_s": 5,
        }
        for name in ("fast", "strong")
    ]
    return Settings(
        data_dir=demo_settings.data_dir,
        slack=slack,
        models={"tiers": tiers, "deadline_s": 15},
        **{"cache": {"enabled": False}, **overrides},  # type: ignore[arg-type]
    )


@pytest.fixture
async def service(
    demo_settings: Settings,
    double: SlackApiDouble,
    model: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "test-signing-secret")
    monkeypatch.setenv("ANSWERDESK_TEST_MODEL_KEY", "sk-test")
    model.reset()
    model.set_pacing("fast", first_token_ms=300, tokens_per_s=40)
    model.set_pacing("strong", first_token_ms=100, tokens_per_s=80)
    started: list = []

    async def start(**overrides: object) -> tuple[str, Services]:
        context = running(settings_for(demo_settings, double, model, **overrides))
        started.append(context)
        return await context.__aenter__()

    yield start
    for context in reversed(started):
        await context.__aexit__(None, None, None)


async def mention(url: str, ts: str, event_id: str, text: str = WIFI, user: str = JORDAN) -> None:
    event = app_mention(text, user=user, channel=PUBLIC_CHANNEL, ts=ts)
    status, _ = await send(url, event_payload(event, event_id=event_id))
    assert status == 200


def in_thread(double: SlackApiDouble, thread: str) -> list[dict]:
    """The Slack calls made for the answer in ``thread``: posts and streams into it, statuses
    of it, and calls on the messages those created."""
    ours = [c for c in double.calls if c["method"].startswith(SLACK_CALLS)]
    created = {c["response"].get("ts") for c in ours if c["args"].get("thread_ts") == thread} - {
        None
    }
    return [
        c for c in ours if c["args"].get("thread_ts") == thread or c["args"].get("ts") in created
    ]


def feedback_value(blocks: list[dict], vote: str) -> str:
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("type") == "feedback_buttons":
                return element[f"{vote}_button"]["value"]
    raise AssertionError("no feedback buttons")


async def test_a_mention_is_streamed_start_append_stop_with_the_final_blocks(
    service, double: SlackApiDouble, model: ModelServer
) -> None:
    url, services = await service()
    thread = "1700000100.000100"
    await mention(url, thread, "Ev-s1")
    await settle(double, "chat.stopStream")

    [placeholder] = double.calls_to("chat.postMessage")
    assert "Looking into it" in placeholder["args"]["text"]
    [start] = double.calls_to("chat.startStream")
    assert start["args"]["thread_ts"] == thread and start["args"]["recipient_user_id"] == JORDAN
    [deleted] = double.calls_to("chat.delete")
    assert deleted["args"]["ts"] == placeholder["response"]["ts"]  # the stream replaced it
    assert len(double.calls_to("chat.appendStream")) >= 1  # words kept coming
    [streamed] = double.streams()
    [message] = double.messages()
    assert message["ts"] == streamed["ts"] and not streamed["streaming"]
    assert streamed["markdown"].startswith("According to the sources")
    assert "wifi-guests" in json.dumps(streamed["stop_blocks"]) or "Guest" in json.dumps(
        streamed["stop_blocks"]
    )
    request_id = feedback_value(streamed["stop_blocks"], "positive").split(":", 1)[1]
    assert double.calls_to("chat.update") == []  # the streamed text was the checked answer

    await services.traces.flush()
    trace = await services.traces.get(request_id)
    assert trace["platform"] == "slack" and trace["progress"]["first_delta_ms"] >= 300
    assert trace["mode"] == "answer" and "revised_after_check" not in trace["notices"]
    posted = await SqlConversationStore(services.engine).get(request_id)
    assert posted is not None and posted.answer_message == streamed["ts"]
    calls = [c["method"] for c in in_thread(double, thread)]
    assert calls[0] == "chat.postMessage" and calls[-1] == "chat.stopStream"
    assert {"chat.startStream", "chat.delete", "chat.appendStream"} <= set(calls)
    assert len(calls) <= StreamConfig(interval_s=0.2).max_calls_per_answer()


async def test_feedback_buttons_record_votes_like_the_other_buttons(
    service, double: SlackApiDouble
) -> None:
    url, services = await service()
    thread = "1700000101.000100"
    await mention(url, thread, "Ev-s2")
    await settle(double, "chat.stopStream")
    blocks = double.streams()[0]["stop_blocks"]
    down = feedback_value(blocks, "negative")
    request_id = down.split(":", 1)[1]
    for user in (JORDAN, PRIYA):
        click = block_action(
            "answerdesk_feedback",
            down,
            user=user,
            channel=PUBLIC_CHANNEL,
            message_ts=double.streams()[0]["ts"],
            thread_ts=thread,
            element_type="feedback_buttons",
        )
        assert (await send(url, click))[0] == 200
    await settle(double, "chat.postMessage", 2)  # the second 👎 offers a person, as before
    assert "person" in double.calls_to("chat.postMessage")[1]["args"]["text"]
    votes = await SqlConversationStore(services.engine).votes(request_id)
    assert sorted((v.voter, v.value) for v in votes) == sorted([(PRIYA, -1), (JORDAN, -1)])


async def test_refused_streaming_shows_the_draft_by_updates_then_the_answer(
    service, double: SlackApiDouble
) -> None:
    url, _ = await service()
    double.fail("chat.startStream", "error:feature_not_enabled")
    thread = "1700000102.000100"
    await mention(url, thread, "Ev-s3")
    deadline = time.monotonic() + 60
    while not any(
        "Writing" not in json.dumps(c["args"].get("blocks")) for c in double.calls_to("chat.update")
    ):
        assert time.monotonic() < deadline, double.calls
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    updates = double.calls_to("chat.update")
    assert "Writing" in json.dumps(updates[0]["args"]["blocks"])  # a draft, marked as one
    assert len(updates) >= 2 and double.streams() == []
    [message] = double.messages()  # the working message, now the answer
    assert message["ts"] == double.calls_to("chat.postMessage")[0]["response"]["ts"]
    assert message["text"].startswith("According to the sources")
    assert "Writing" not in json.dumps(message["blocks"])


async def test_when_draft_updates_are_refused_too_only_the_final_answer_shows(
    service, double: SlackApiDouble
) -> None:
    url, _ = await service()
    double.fail("chat.startStream", "error:not_allowed")
    double.fail("chat.update", "error:cant_update_message")  # the first draft update
    thread = "1700000103.000100"
    await mention(url, thread, "Ev-s4")
    await settle(double, "chat.update", 2)
    first, final = double.calls_to("chat.update")
    assert first["response"]["ok"] is False and final["response"]["ok"] is True
    assert "Writing" not in json.dumps(final["args"]["blocks"])  # no more drafts after
    assert double.messages()[0]["text"].startswith("According to the sources")


async def test_a_draft_revised_by_the_check_ends_with_the_notice(
    service, double: SlackApiDouble, model: ModelServer
) -> None:
    url, _ = await service()
    model.script("fast", "text:Guest passes last 24 hours [2], from the front desk [1].")
    thread = "1700000104.000100"
    await mention(url, thread, "Ev-s5")
    await settle(double, "chat.update")
    [streamed] = double.streams()
    assert "[2], from" in streamed["markdown"]  # the draft as the model wrote it
    [message] = double.messages()
    assert message["ts"] == streamed["ts"]  # replaced in place by the checked answer
    assert "24 hours [1], from the front desk [2]" in message["text"]
    assert "revised" in json.dumps(message["blocks"])


async def test_a_tier_failing_mid_stream_ends_in_the_fallback_answer_with_its_notice(
    service, double: SlackApiDouble, model: ModelServer
) -> None:
    url, _ = await service()
    model.script("fast", "cut:5")
    thread = "1700000105.000100"
    await mention(url, thread, "Ev-s6")
    await settle(double, "chat.update")
    [streamed] = double.streams()
    assert "Checking again" in streamed["markdown"]  # the cut draft was followed, not kept
    [message] = double.messages()
    text = json.dumps(message["blocks"])
    assert "fallback model wrote this answer" in text and "revised" in text
    assert message["text"].startswith("According to the sources")


async def test_a_cache_hit_is_posted_whole(service, double: SlackApiDouble) -> None:
    url, _ = await service(cache={"enabled": True})
    await mention(url, "1700000106.000100", "Ev-s7")
    await settle(double, "chat.stopStream")
    await mention(url, "1700000107.000100", "Ev-s8", user=PRIYA)
    await settle(double, "chat.update")
    assert len(double.calls_to("chat.startStream")) == 1  # only the first answer streamed
    update = double.calls_to("chat.update")[0]["args"]
    assert "cached" in json.dumps(update["blocks"][-1])
    ids = [e.get("action_id") for b in update["blocks"] for e in b.get("elements", [])]
    assert "answerdesk_feedback_up" in ids  # a whole message keeps its classic buttons


async def test_status_steps_show_while_the_answer_is_prepared(
    service, double: SlackApiDouble, model: ModelServer
) -> None:
    url, _ = await service()
    model.set_pacing("fast", first_token_ms=1500, tokens_per_s=40)
    thread = "1700000108.000100"
    await mention(url, thread, "Ev-s9")
    await settle(double, "chat.stopStream")
    statuses = double.statuses(PUBLIC_CHANNEL, thread)
    assert statuses[:2] == ["Searching the documents…", "Writing the answer…"]
    assert statuses[-1] == ""  # the streamed answer ended the status
    set_calls = double.calls_to("assistant.threads.setStatus")
    start = double.calls_to("chat.startStream")[0]
    assert double.calls.index(set_calls[-1]) < double.calls.index(start)


async def test_a_dm_is_streamed_too(service, double: SlackApiDouble) -> None:
    url, _ = await service()
    event = dm_message(QUESTION, user=PRIYA, channel=DM, ts="1700000109.000100")
    await send(url, event_payload(event, event_id="Ev-s10"))
    await settle(double, "chat.stopStream")
    [streamed] = double.streams()
    assert streamed["channel"] == DM and streamed["thread_ts"] == "1700000109.000100"


async def test_assistant_thread_started_gets_suggested_prompts(
    service, double: SlackApiDouble
) -> None:
    configured = ["How do I reset my Okta password?", "What is the travel hotel limit?"]
    url, _ = await service(slack={"assistant": {"suggested_prompts": configured}})
    event = assistant_thread_started(user=PRIYA, channel=DM, thread_ts="1700000110.000100")
    assert (await send(url, event_payload(event, event_id="Ev-s11")))[0] == 200
    await settle(double, "assistant.threads.setSuggestedPrompts")
    [offered] = double.suggested_prompts()
    assert (offered["channel_id"], offered["thread_ts"]) == (DM, "1700000110.000100")
    assert [p["message"] for p in offered["prompts"]] == configured
    assert offered["title"]


async def test_without_configured_prompts_the_most_asked_public_questions_are_suggested(
    service, double: SlackApiDouble
) -> None:
    url, services = await service()

    async def ask(text: str, email: str, audience: str) -> None:
        question = Question(text, Asker(email=email), Audience.parse(audience))
        await services.answers.answer(question)

    popular = "How long does a guest Wi-Fi pass last?"
    for email in ("jordan.kim@harborlight.example", "priya.raman@harborlight.example"):
        await ask(popular, email, "public")
        await ask("What is the salary range for an L3 engineer?", email, "dm")  # private
        await ask("Is ana@harborlight.example on the VPN allow list?", email, "public")  # PII
    await ask("How do I reset my Okta password?", "ceo@harborlight.example", "public")  # once
    await services.traces.flush()
    event = assistant_thread_started(user=PRIYA, channel=DM, thread_ts="1700000111.000100")
    await send(url, event_payload(event, event_id="Ev-s12"))
    await settle(double, "assistant.threads.setSuggestedPrompts")
    [offered] = double.suggested_prompts()
    assert [p["message"] for p in offered["prompts"]] == [popular]


async def test_with_streaming_off_the_answer_replaces_the_working_message(
    service, double: SlackApiDouble
) -> None:
    url, _ = await service(slack={"streaming": False})
    await mention(url, "1700000112.000100", "Ev-s13")
    await settle(double, "chat.update")
    assert double.calls_to("chat.startStream") == [] and double.streams() == []
    [message] = double.messages()
    assert message["text"].startswith("According to the sources")
