"""`GET /metrics` after a handful of real requests: the answer flow through litellm to the
local model server, a handoff, a cache hit, a Slack event delivered twice; scraped over
HTTP and parsed with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.settings import Settings
from bot.wiring import Services
from core.answering.types import Asker, Question
from tests.support.cli import REPO
from tests.support.model_server import ModelServer
from tests.support.service import running
from tests.support.slack_api import SlackApiDouble, app_mention, event_payload, signed_headers
from tests.support.tiers import KEY_ENV, tiers

TOKEN = "metrics-scrape-token-1234"
JORDAN = "jordan.kim@harborlight.example"
SLACK_SECRET = "test-signing-secret"
JORDAN_SLACK, CHANNEL = "U03JKIM8QX", "C0GENERAL"


@pytest.fixture(scope="module")
def models() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-test") as double:
        yield double


@pytest.fixture
async def service(
    demo_settings: Settings,
    models: ModelServer,
    slack_api: SlackApiDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[str, Services]]:
    models.reset()
    slack_api.reset(directory=True)
    slack_api.add_user(JORDAN_SLACK, JORDAN)
    slack_api.add_channel(CHANNEL, kind="public", members=[JORDAN_SLACK])
    monkeypatch.setenv(KEY_ENV, "sk-test")
    monkeypatch.setenv("ANSWERDESK_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)
    settings = Settings(
        data_dir=demo_settings.data_dir,
        models={"tiers": tiers(models.url)},
        slack={"api_base_url": slack_api.url, "post_interval_s": 0.01},
    )
    async with running(settings) as pair:
        yield pair


async def scrape(url: str, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics", headers=headers) as response,
    ):
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def total(found: dict, name: str, **labels: str) -> float:
    """Sum over the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


async def test_metrics_after_a_handful_of_requests(
    service: tuple[str, Services], models: ModelServer, slack_api: SlackApiDouble
) -> None:
    url, services = service

    async def ask(text: str) -> object:
        return await services.answers.answer(Question(text, Asker(JORDAN)))

    first = await ask("How long does a guest Wi-Fi pass last?")  # fast tier, cached
    models.script("fast", "500")
    fallback = await ask("How do I reset my Okta password?")  # fast fails → strong
    handoff = await ask("talk to a human please")
    again = await ask("How long does a guest Wi-Fi pass last?")  # a cache hit
    assert (first.tier, fallback.tier, handoff.mode, again.cache["status"]) == (
        "fast",
        "strong",
        "handoff",
        "hit",
    )
    # One Slack mention, delivered twice (Slack's retry): answered once, one dedupe hit.
    payload = json.dumps(
        event_payload(
            app_mention(
                "<@UBOT> Where is the VPN portal?",
                user=JORDAN_SLACK,
                channel=CHANNEL,
                ts="1700000000.000900",
            ),
            event_id="Ev-metrics-1",
        )
    ).encode()
    async with aiohttp.ClientSession() as session:
        for retry in ({}, {"retry_num": 1, "retry_reason": "http_timeout"}):
            headers = signed_headers(SLACK_SECRET, payload, **retry)  # type: ignore[arg-type]
            async with session.post(f"{url}/slack/events", data=payload, headers=headers) as r:
                assert r.status == 200
    deadline = time.monotonic() + 60
    # The answer ends with chat.stopStream when streamed, chat.update of the placeholder else.
    while not (slack_api.calls_to("chat.stopStream") or slack_api.calls_to("chat.update")):
        assert time.monotonic() < deadline, "the Slack mention was not answered"
        await asyncio.sleep(0.05)

    assert (await scrape(url, token=None))[0] == 401
    assert (await scrape(url, token="wrong"))[0] == 401
    status, text = await scrape(url)
    assert status == 200
    found = samples(text)

    cli = {"platform": "cli"}
    requests = "answerdesk_requests_total"
    assert value(found, requests, **cli, mode="answer", tier="fast", cache="miss") == 1
    assert value(found, requests, **cli, mode="answer", tier="fast", cache="hit") == 1
    assert total(found, "answerdesk_requests_total", **cli, mode="degraded", tier="strong") == 1
    assert total(found, "answerdesk_requests_total", **cli, mode="handoff", tier="none") == 1
    assert total(found, "answerdesk_requests_total", platform="slack") == 1
    assert total(found, "answerdesk_requests_total") == 5
    assert total(found, "answerdesk_request_duration_seconds_count") == 5
    assert total(found, "answerdesk_time_to_first_text_seconds_count") == 5
    latency = sum(a.latency_ms for a in (first, fallback, handoff, again)) / 1000
    assert total(found, "answerdesk_request_duration_seconds_sum", **cli) == pytest.approx(
        latency, rel=1e-3
    )
    assert value(found, "answerdesk_stage_duration_seconds_count", stage="handoff") == 1
    assert value(found, "answerdesk_stage_duration_seconds_count", stage="embed") == 4
    # Model calls, tokens and cost: exactly what the five traces recorded.
    async with services.engine.connect() as conn:  # the answer the Slack mention got
        slack_id = await conn.scalar(
            sqlalchemy.text("SELECT request_id FROM posted_answers WHERE platform = 'slack'")
        )
    slack_trace = await services.traces.get(slack_id)
    assert slack_trace is not None
    traces = [a.trace for a in (first, fallback, handoff, again)] + [slack_trace]
    calls = [c for t in traces for c in t["model_calls"]]
    assert {"tier": "fast", "outcome": "unavailable"} in [
        {"tier": c["tier"], "outcome": c["outcome"]} for c in calls
    ]
    for name in ("fast", "strong"):
        mine = [c for c in calls if c["tier"] == name]
        for outcome in {c["outcome"] for c in mine}:
            expected = sum(1 for c in mine if c["outcome"] == outcome)
            assert value(found, "answerdesk_model_calls_total", tier=name, outcome=outcome) == (
                expected
            )
        for direction in ("input", "output"):
            tokens = sum(c.get(f"{direction}_tokens") or 0 for c in mine)
            assert tokens > 0
            assert (
                value(found, "answerdesk_model_tokens_total", tier=name, direction=direction)
                == tokens
            )
        assert value(found, "answerdesk_cost_usd_total", tier=name) == pytest.approx(
            sum(c.get("cost_usd") or 0 for c in mine)
        )
    assert value(found, "answerdesk_notices_total", code="fallback_tier") == 1
    assert value(found, "answerdesk_tickets", provider="builtin", state="open") == 1
    assert value(found, "answerdesk_breaker_state", tier="fast", state="closed") == 1
    assert value(found, "answerdesk_breaker_state", tier="fast", state="open") == 0
    assert value(found, "answerdesk_dedupe_hits_total", platform="slack") == 1
    assert ("answerdesk_trace_buffer_depth", ()) in found
    assert value(found, "answerdesk_traces_spilled_total") == 0
    # No unbounded label values: no person, no question, no request id.
    for answer in (first, fallback, handoff, again):
        assert answer.request_id not in text
    for needle in ("jordan", "@", "Wi-Fi", "Okta", JORDAN_SLACK):
        assert needle not in text


async def test_a_console_session_may_scrape(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a metrics token, a configured console login guards /metrics: a scrape needs
    a console session."""
    from tests.support.console import login

    monkeypatch.setenv("ANSWERDESK_ADMIN_USER", "alice")
    monkeypatch.setenv("ANSWERDESK_ADMIN_PASSWORD", "correct horse battery")
    settings = Settings(data_dir=demo_settings.data_dir)
    async with running(settings) as (url, _services):
        assert (await scrape(url, token=None))[0] == 401
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            await login(browser, url, "alice", "correct horse battery")
            async with browser.get(f"{url}/metrics") as response:
                assert response.status == 200
                assert "answerdesk_requests_total" in await response.text()


async def test_open_when_nothing_guards_it_and_404_when_disabled(tmp_path: Path) -> None:
    async with running(Settings(data_dir=tmp_path / "var")) as (url, _):
        status, text = await scrape(url, token=None)
        assert status == 200 and "# TYPE answerdesk_requests_total counter" in text
    off = Settings(data_dir=tmp_path / "var", metrics={"enabled": False})
    async with running(off) as (url, _):
        assert (await scrape(url, token=None))[0] == 404


async def test_example_alert_rules_use_exported_metrics(tmp_path: Path) -> None:
    """Every metric the example Prometheus rules query is one the service exports."""
    import re

    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "answerdesk-alerts.yaml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert exprs
    async with running(Settings(data_dir=tmp_path / "var")) as (url, _):
        _, text = await scrape(url, token=None)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        exported.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    used = {name for e in exprs for name in re.findall(r"\banswerdesk_[a-z0-9_]+", e)}
    assert used and used <= exported, used - exported
