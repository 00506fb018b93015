"""The Teams adapter over real HTTP: activities signed as the Bot Framework signs them, posted
to the running aiohttp app; the bot's botbuilder client calling a local Bot Framework
double (OpenID metadata + JWKS, token endpoint, connector with members and streaming)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from adapters.teams.activities import FeedbackEvent, HumanRequest, TeamsEvent
from adapters.teams.streaming import Final, Status, TextDelta
from bot.settings import Settings
from bot.wiring import Services, build_teams
from core.answering.types import Answer, Citation, Mode, Question
from tests.support.botframework import BotFrameworkDouble, member, message
from tests.support.model_server import unused_port
from tests.support.service import running

APP_ID = "6b1f7c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
PASSWORD = "test-app-password"
BOT = f"28:{APP_ID}"
TENANT = "6f1c2a9e-4b7d-4e3a-9c5f-2d8e1b0a7c43"  # the demo directory's tenant
PRIYA = member("29:priya", "a4e2c9f1-0d5b-4c87-8e3a-6f1b2d9c0e58", None, "Priya Raman")  # hr
TOMAS = member("29:tomas", "e91b4a70-2f6c-4d3e-a8b5-c07d3f1e9a62", None, "Tomas Reyes")
STRANGER = member("29:stranger", "11111111-2222-4333-8444-555555555555", "jordan.kim@harborlight.example")
PERSONAL = "a:1priya-personal-chat"
GROUP = "19:group-chat-priya-tomas@thread.v2"
TEAM = "19:team-general@thread.tacv2"
CHANNEL = f"{TEAM};messageid=1700000000001"
SALARY = "What is the salary range for an L3 engineer in the Portland area?"
FIGURES = ("$72,000", "$90,000", "$108,000")


@pytest.fixture(scope="module")
def framework() -> Iterator[BotFrameworkDouble]:
    with BotFrameworkDouble(APP_ID, PASSWORD) as double:
        yield double


@pytest.fixture
def double(framework: BotFrameworkDouble) -> BotFrameworkDouble:
    framework.reset()
    framework.add_roster(PERSONAL, [PRIYA])
    framework.add_roster(GROUP, [PRIYA, TOMAS])
    framework.add_roster(TEAM, [PRIYA, TOMAS, STRANGER])
    framework.add_roster(CHANNEL, [PRIYA, TOMAS, STRANGER])
    return framework


@pytest.fixture
def teams_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", APP_ID)
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", PASSWORD)
    monkeypatch.setenv("MICROSOFT_APP_TENANT_ID", TENANT)


def teams_settings(base: Settings, double: BotFrameworkDouble, **teams: Any) -> Settings:
    return Settings(
        data_dir=base.data_dir,
        teams={
            "openid_metadata_url": double.metadata_url,
            "token_url": double.token_url,
            **teams,
        },
        **({"models": teams.pop("models")} if "models" in teams else {}),
    )


@pytest.fixture
async def service(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> AsyncIterator[tuple[str, Services]]:
    async with running(teams_settings(demo_settings, double)) as pair:
        yield pair


async def post(url: str, activity: dict, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/messages", json=activity, headers=headers) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else None


def ask(double: BotFrameworkDouble, text: str, conversation: str, kind: str, **extra: Any) -> dict:
    user = extra.pop("user", PRIYA)
    return message(
        text,
        service_url=double.service_url,
        conversation_id=conversation,
        conversation_type=kind,
        user=user,
        tenant_id=extra.pop("tenant_id", TENANT),
        bot_id=BOT,
        **extra,
    )


async def until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def answers(double: BotFrameworkDouble, conversation: str) -> list[dict]:
    """The bot's messages (not typing or stream updates) in a conversation."""
    return [c["activity"] for c in double.sent(conversation) if c["activity"]["type"] == "message"]


async def test_personal_question_typing_then_streamed_cited_answer(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, services = service
    activity = ask(double, "How long does a guest Wi-Fi pass last?", PERSONAL, "personal")
    status, _ = await post(url, activity, double.sign())
    assert status == 200
    await until(lambda: answers(double, PERSONAL), "the answer")
    calls = double.sent(PERSONAL)
    kinds = [(c["activity"]["type"], _stream_type(c["activity"])) for c in calls]
    assert kinds[0] == ("typing", None)  # the typing indicator first
    assert kinds[1] == ("typing", "informative")
    assert kinds[-1] == ("message", "final")
    assert double.violations == []
    # Replies within the turn answer the inbound activity.
    assert all(c["reply_to"] == activity["id"] for c in calls)
    final = calls[-1]["activity"]
    _assert_citations_match(final)
    assert final["channelData"]["feedbackLoopEnabled"] is True
    request_id = re.search(r"Request (\w+)", final["text"]).group(1)
    trace = await services.traces.get(request_id)
    assert trace is not None and trace["platform"] == "teams" and trace["audience"] == "dm"


def _stream_type(activity: dict) -> str | None:
    for entity in activity.get("entities") or []:
        if entity.get("type") == "streaminfo":
            return entity["streamType"]
    return None


def _assert_citations_match(activity: dict) -> None:
    (entity,) = [e for e in activity["entities"] if e.get("@type") == "Message"]
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", activity["text"])}
    positions = {c["position"] for c in entity["citation"]}
    assert markers and markers == positions, (markers, positions)
    for claim in entity["citation"]:
        assert claim["@type"] == "Claim" and claim["appearance"]["name"]
        assert len(claim["appearance"]["abstract"]) <= 160
