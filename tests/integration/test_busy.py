"""A busy replica, the way operators and users meet it: `answerdesk serve` in a subprocess
with `answer_queue` in its configuration file, flooded with signed Slack events against a
slow model double. The queue bound holds (a few answers at once, a few waiting), everyone
else is told at once that the service is busy (Teams too: the slots are the replica's),
/metrics shows the queue, and /readyz reports the saturation, then recovers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.settings import Settings
from tests.integration.test_teams import APP_ID, BOT, PASSWORD, PRIYA, TEAMS_ENV, TENANT
from tests.support.botframework import BotFrameworkDouble, message
from tests.support.model_server import ModelServer
from tests.support.processes import free_port
from tests.support.slack_api import SlackApiDouble, app_mention, event_payload, signed_headers

SECRET = "busy-signing-secret"
JORDAN = "U03JKIM8QX"
CHANNELS = [f"C0BUSY{n:03d}" for n in range(10)]
PERSONAL = "a:1priya-busy-chat"
BUSY = "answering a lot of questions right now"
MAX_CONCURRENT, MAX_WAITING = 2, 3


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    with ModelServer() as server:
        # Slow enough that the queue stays full while the test looks at it.
        server.set_pacing("fast", first_token_ms=4000, tokens_per_s=40)
        yield server


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-busy") as double:
        double.add_user(JORDAN, "jordan.kim@harborlight.example")
        for channel in CHANNELS:
            double.add_channel(channel, kind="public", members=[JORDAN])
        yield double


@pytest.fixture(scope="module")
def framework() -> Iterator[BotFrameworkDouble]:
    with BotFrameworkDouble(APP_ID, PASSWORD) as double:
        double.add_roster(PERSONAL, [PRIYA])
        yield double


@pytest.fixture
def served(
    demo_settings: Settings,
    tmp_path: Path,
    model: ModelServer,
    slack: SlackApiDouble,
    framework: BotFrameworkDouble,
) -> Iterator[str]:
    config = tmp_path / "answerdesk.yaml"
    config.write_text(
        f"data_dir: {demo_settings.data_dir}\n"
        "models:\n  tiers:\n    - name: fast\n      model: openai/fast\n"
        f"      api_base: {model.url}\n      api_key_env: BUSY_MODEL_KEY\n      timeout_s: 30\n"
        "  deadline_s: 60\n"
        "cache: {enabled: false}\n"
        f"slack: {{api_base_url: {slack.url}, post_interval_s: 0.01}}\n"
        f"teams: {{openid_metadata_url: {framework.metadata_url}, "
        f"token_url: {framework.token_url}}}\n"
        f"answer_queue: {{max_concurrent: {MAX_CONCURRENT}, max_waiting: {MAX_WAITING}, "
        "max_wait_s: 600}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        **TEAMS_ENV,
        "ANSWERDESK_CONFIG": str(config),
        "BUSY_MODEL_KEY": "sk-test",
        "SLACK_BOT_TOKEN": "xoxb-busy",
        "SLACK_SIGNING_SECRET": SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert "serving on" in process.stdout.readline()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=60)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def mention(session: aiohttp.ClientSession, url: str, n: int) -> int:
    ts = f"1800000{n:03d}.000100"
    event = app_mention(
        "<@UBOT> How long does a guest Wi-Fi pass last?", user=JORDAN, channel=CHANNELS[n], ts=ts
    )
    body = json.dumps(event_payload(event, event_id=f"EvBusy{n}")).encode()
    async with session.post(
        f"{url}/slack/events", data=body, headers=signed_headers(SECRET, body)
    ) as response:
        return response.status


async def until(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return found


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def per_thread(slack: SlackApiDouble) -> dict[str, list[str]]:
    """Each flooded thread's final texts: busy notices and answers (streams included)."""
    threads: dict[str, list[str]] = {}
    for m in slack.messages():
        if m.get("channel") in CHANNELS and "Looking into it" not in (m.get("text") or ""):
            threads.setdefault(m["channel"], []).append(m.get("text") or "")
    return threads


async def test_a_flood_is_bounded_the_rest_told_busy_and_readiness_flips_and_recovers(
    served: str, slack: SlackApiDouble, framework: BotFrameworkDouble
) -> None:
    url = served
    status, body = await get(f"{url}/readyz")
    assert status == 200 and json.loads(body)["checks"]["answer_queue"] == "ok"

    async with aiohttp.ClientSession() as session:
        acks = await asyncio.gather(*(mention(session, url, n) for n in range(len(CHANNELS))))
    assert acks == [200] * len(CHANNELS)
    refused = len(CHANNELS) - MAX_CONCURRENT - MAX_WAITING

    def busy_threads() -> list[str]:
        return [c for c, texts in per_thread(slack).items() if any(BUSY in t for t in texts)]

    async def all_refusals_told() -> bool:
        return len(busy_threads()) >= refused

    await until(all_refusals_told, "the busy notices")

    # Saturated: /readyz says so (503, why, in JSON); /metrics shows the queue.
    status, body = await get(f"{url}/readyz")
    ready = json.loads(body)
    assert status == 503, ready
    assert ready["status"] == "busy" and ready["checks"]["database"] == "ok"
    assert ready["answer_queue"]["reason"] == "queue_full"
    assert ready["answer_queue"]["waiting"] == MAX_WAITING
    _, text = await get(f"{url}/metrics")
    assert metric(text, "answerdesk_answer_queue_depth") == MAX_WAITING
    assert metric(text, "answerdesk_answers_in_flight") == MAX_CONCURRENT
    assert metric(text, "answerdesk_answer_queue_saturated") == 1
    assert metric(text, 'answerdesk_busy_refusals_total{reason="queue_full"}') == refused

    # Teams shares the replica's slots: its question is set aside too, and told so.
    activity = message(
        "How long does a guest Wi-Fi pass last?",
        service_url=framework.service_url,
        conversation_id=PERSONAL,
        conversation_type="personal",
        user=PRIYA,
        tenant_id=TENANT,
        bot_id=BOT,
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/api/messages",
            json=activity,
            headers={"Authorization": f"Bearer {framework.sign()}"},
        ) as response,
    ):
        assert response.status == 200

    async def teams_told() -> bool:
        return any(
            BUSY in (c["activity"].get("text") or "")
            for c in framework.sent(PERSONAL)
            if c["activity"]["type"] == "message"
        )

    await until(teams_told, "the busy notice in Teams")

    # The admitted ones are answered, each once; nobody gets both a notice and an answer.
    async def answered() -> dict[str, list[str]] | None:
        threads = per_thread(slack)
        done = [c for c, texts in threads.items() if any("[1]" in t for t in texts)]
        return threads if len(done) >= MAX_CONCURRENT + MAX_WAITING else None

    threads = await until(answered, "the admitted answers")
    assert len(threads) == len(CHANNELS)
    for texts in threads.values():
        assert len(texts) == 1, texts  # one answer or one notice
    assert len(busy_threads()) == refused

    async def recovered() -> bool:
        return (await get(f"{url}/readyz"))[0] == 200

    await until(recovered, "readiness to recover")
    _, text = await get(f"{url}/metrics")
    assert metric(text, "answerdesk_answer_queue_depth") == 0
    assert metric(text, "answerdesk_answer_queue_saturated") == 0
    assert metric(text, 'answerdesk_busy_refusals_total{reason="queue_full"}') == refused + 1
    assert metric(text, "answerdesk_answer_queue_wait_seconds_count") == (
        MAX_CONCURRENT + MAX_WAITING
    )
