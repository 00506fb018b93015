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

from adapters.teams.activities import AnswerPosted, FeedbackEvent, HumanRequest, TeamsEvent
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
STRANGER = member(
    "29:stranger", "11111111-2222-4333-8444-555555555555", "jordan.kim@harborlight.example"
)
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


def teams_settings(
    base: Settings, double: BotFrameworkDouble, models: dict | None = None, **teams: Any
) -> Settings:
    return Settings(
        data_dir=base.data_dir,
        teams={
            "openid_metadata_url": double.metadata_url,
            "token_url": double.token_url,
            **teams,
        },
        **({"models": models} if models else {}),
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


async def test_not_configured_answers_503_and_the_rest_runs(
    demo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "MICROSOFT_APP_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    async with running(demo_settings) as (url, _), aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/messages", json={"type": "message"}) as response:
            assert response.status == 503
            assert "MICROSOFT_APP_ID" in (await response.json())["error"]
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200


async def test_unauthenticated_activities_are_refused_and_nothing_is_processed(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    url, _services = service
    activity = ask(double, "How many PTO days do I get?", PERSONAL, "personal")
    forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "no token": None,
        "bad signature": double.sign(key=forged),
        "unknown key id": double.sign(key=forged, key_id="another-key"),
        "expired": double.sign(expires_in=-3600),
        "another app's token": double.sign(audience="0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e"),
        "another issuer": double.sign(issuer="https://sts.example.com/"),
        "another service URL": double.sign(service_url="https://evil.example.com/teams/"),
        "not a JWT": "abc.def.ghi",
    }
    for reason, token in refused.items():
        status, body = await post(url, activity, token)
        assert (status, body) == (401, {"error": "unauthorized"}), reason
    other_tenant = ask(double, "How many PTO days?", PERSONAL, "personal", tenant_id="0" * 8)
    status, body = await post(url, other_tenant, double.sign())
    assert (status, body) == (401, {"error": "tenant not allowed"})
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/messages", data=b"{not json") as response,
    ):
        assert response.status == 400 and "error" in await response.json()
    await asyncio.sleep(0.5)
    assert double.sent() == []
    # Nothing was claimed either: the same activity, properly signed, is answered.
    assert (await post(url, activity, double.sign()))[0] == 200
    await until(lambda: answers(double, PERSONAL), "the answer")


async def test_group_chat_answers_only_what_every_member_may_read(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, services = service
    group = ask(double, SALARY, GROUP, "groupChat", mention=True)
    assert (await post(url, group, double.sign()))[0] == 200
    await until(lambda: answers(double, GROUP), "the group answer")
    reply = answers(double, GROUP)[0]
    assert not any(figure in reply["text"] for figure in FIGURES)
    assert not any(figure in json.dumps(reply) for figure in FIGURES)
    assert _stream_type(reply) is None  # no streaming outside 1:1 chats
    assert double.violations == []
    # The member list was read page by page (two members a page).
    assert any("/pagedmembers" in c["path"] for c in double.calls)
    request_id = re.search(r"Request (\w+)", reply["text"]).group(1)
    trace = await services.traces.get(request_id)
    assert trace["audience"] == (
        "members:priya.raman@harborlight.example,tomas.reyes@harborlight.example"
    )
    # The same person in her 1:1 chat reads the HR figures: the refusal was the audience's.
    personal = ask(double, SALARY, PERSONAL, "personal")
    assert (await post(url, personal, double.sign()))[0] == 200
    await until(lambda: answers(double, PERSONAL), "the personal answer")
    assert any(figure in answers(double, PERSONAL)[0]["text"] for figure in FIGURES)


async def test_channel_mention_is_stripped_and_the_team_roster_is_the_audience(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, services = service
    activity = ask(
        double,
        "How do I reset my Okta password?",
        CHANNEL,
        "channel",
        mention=True,
        team_id=TEAM,
        user=STRANGER,  # not in the directory by object id: found by the roster's email
    )
    assert "<at>Answerdesk</at>" in activity["text"]
    assert (await post(url, activity, double.sign()))[0] == 200
    await until(lambda: answers(double, CHANNEL), "the channel answer")
    kinds = [c["activity"]["type"] for c in double.sent(CHANNEL)]
    assert kinds == ["typing", "message"]
    reply = answers(double, CHANNEL)[0]
    request_id = re.search(r"Request (\w+)", reply["text"]).group(1)
    trace = await services.traces.get(request_id)
    assert trace["question"] == "How do I reset my Okta password?"
    assert trace["asker"] == "jordan.kim@harborlight.example"
    assert trace["audience"].startswith("members:") and "tomas.reyes" in trace["audience"]
    assert any(c["path"].endswith("/members/29:stranger") for c in double.calls)


async def test_a_redelivered_activity_is_answered_once(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, _ = service
    activity = ask(double, "What portal address do I enter in GlobalProtect?", GROUP, "groupChat")
    assert (await post(url, activity, double.sign()))[0] == 200
    assert (await post(url, activity, double.sign()))[0] == 200  # Teams' redelivery
    await until(lambda: answers(double, GROUP), "the answer")
    await asyncio.sleep(1.0)
    assert len(answers(double, GROUP)) == 1
    assert [c["activity"]["type"] for c in double.sent(GROUP)].count("typing") == 1


async def test_welcome_in_personal_scope_and_other_activities_ignored(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, _ = service
    base = ask(double, "", PERSONAL, "personal")
    installed = {
        **base,
        "type": "conversationUpdate",
        "text": None,
        "membersAdded": [{"id": BOT}],
    }
    assert (await post(url, installed, double.sign()))[0] == 200
    (welcome,) = answers(double, PERSONAL)
    assert "How many PTO days do I get?" in welcome["text"]
    ignored = [
        {**base, "id": "r1", "type": "messageReaction", "reactionsAdded": [{"type": "like"}]},
        {
            **base,
            "id": "g1",
            "type": "conversationUpdate",
            "membersAdded": [{"id": BOT}],
            "conversation": {**base["conversation"], "conversationType": "groupChat"},
        },
        {**base, "id": "e1", "type": "event", "name": "application/vnd.microsoft.meetingStart"},
        ask(double, "", GROUP, "groupChat", mention=True),  # a bare mention: nothing asked
    ]
    for activity in ignored:
        assert (await post(url, activity, double.sign()))[0] == 200
    await asyncio.sleep(0.5)
    assert len(double.sent()) == 1


async def test_feedback_invoke_and_human_submit_reach_the_event_sink(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> None:
    events: list[TeamsEvent] = []

    async def sink(event: TeamsEvent) -> None:
        events.append(event)

    settings = teams_settings(demo_settings, double)
    async with running(settings, teams=lambda s: build_teams(s, on_event=sink)) as (url, _):
        question = ask(double, "How many PTO days do I get after 3 years?", GROUP, "groupChat")
        assert (await post(url, question, double.sign()))[0] == 200
        await until(lambda: answers(double, GROUP), "the answer")
        await until(lambda: any(isinstance(e, AnswerPosted) for e in events), "AnswerPosted")
        posted = next(e for e in events if isinstance(e, AnswerPosted))
        answer_id = double.sent(GROUP)[-1]["id"]
        assert posted.message_id == answer_id
        feedback = {
            **ask(double, "", GROUP, "groupChat", user=TOMAS),
            "type": "invoke",
            "name": "message/submitAction",
            "replyToId": answer_id,
            "value": {
                "actionName": "feedback",
                "actionValue": {"reaction": "dislike", "feedback": '{"feedbackText":"Too vague"}'},
            },
        }
        status, body = await post(url, feedback, double.sign())
        assert (status, body) == (200, {})
        vote = next(e for e in events if isinstance(e, FeedbackEvent))
        assert (vote.reply_to_id, vote.reaction, vote.text) == (answer_id, "dislike", "Too vague")
        assert vote.user.aad_object_id == TOMAS["aadObjectId"]
        submit = ask(
            double,
            "",
            GROUP,
            "groupChat",
            value={"action": "talk_to_human", "request_id": posted.request_id},
        )
        assert (await post(url, submit, double.sign()))[0] == 200
        human = next(e for e in events if isinstance(e, HumanRequest))
        assert human.request_id == posted.request_id and human.tenant_id == TENANT
        other_invoke = {**feedback, "id": "inv-2", "name": "adaptiveCard/action", "value": {}}
        assert await post(url, other_invoke, double.sign()) == (200, {})
    assert len(answers(double, GROUP)) == 1  # votes and submits post nothing themselves


async def test_degraded_answer_carries_a_visible_notice(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/v1"
    settings = teams_settings(
        demo_settings,
        double,
        models={
            "tiers": [{"name": "fast", "model": "openai/gpt-x", "api_base": dead, "timeout_s": 2}],
            "deadline_s": 8,
        },
    )
    async with running(settings) as (url, _):
        activity = ask(double, "How many PTO days do I get after 3 years?", GROUP, "groupChat")
        assert (await post(url, activity, double.sign()))[0] == 200
        await until(lambda: answers(double, GROUP), "the answer")
    reply = answers(double, GROUP)[0]
    assert "⚠️ **Degraded mode**" in reply["text"]
    assert re.search(r"⚠️ .*model", reply["text"], re.IGNORECASE)
    _assert_citations_match(reply)


def _scripted(answer_of: Callable[[Question], Answer], delay_s: float, deltas: list[str]):
    async def source(question: Question) -> AsyncIterator[Any]:
        yield Status("Searching 3 collections…")
        for delta in deltas:
            await asyncio.sleep(delay_s)
            yield TextDelta(delta)
        await asyncio.sleep(delay_s)
        yield Final(answer_of(question))

    return source


def _scripted_answer(question: Question) -> Answer:
    return Answer(
        request_id="scripted00000001",
        mode=Mode.ANSWER,
        text="Guests get 24 hours [1] on up to 3 devices [1, 2].",
        citations=[
            Citation(1, "c1", "it/wifi-guests.html", "Guest Wi-Fi", "it/wifi-guests.html", None),
            Citation(2, "c2", "it/vpn-setup.md", "VPN setup", "it/vpn-setup.md", 2),
        ],
        model="openai/scripted",
    )


async def test_streaming_sequence_in_a_personal_chat(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> None:
    deltas = ["Guests get ", "24 hours [1] ", "on up to 3 devices [1, 2]."]
    source = _scripted(_scripted_answer, 1.05, deltas)
    settings = teams_settings(demo_settings, double)
    async with running(settings, teams=lambda s: build_teams(s, progress=source)) as (url, _):
        activity = ask(double, "How long does a guest pass last?", PERSONAL, "personal")
        assert (await post(url, activity, double.sign()))[0] == 200
        await until(lambda: answers(double, PERSONAL), "the final message")
    assert double.violations == []
    stream = [c["activity"] for c in double.sent(PERSONAL)][1:]  # after the typing indicator
    infos = [next(e for e in a["entities"] if e["type"] == "streaminfo") for a in stream]
    assert [i["streamType"] for i in infos] == ["informative", *["streaming"] * 3, "final"]
    assert [i.get("streamSequence") for i in infos[:-1]] == [1, 2, 3, 4]
    stream_id = double.sent(PERSONAL)[1]["id"]
    assert all(i["streamId"] == stream_id for i in infos[1:])
    assert stream[1]["text"] == "Guests get "
    assert stream[3]["text"] == "".join(deltas).replace("&", "&amp;")
    final = stream[-1]
    assert final["text"].startswith("Guests get 24 hours [1] on up to 3 devices [1][2].")
    _assert_citations_match(final)
    (message_entity,) = [e for e in final["entities"] if e.get("@type") == "Message"]
    assert message_entity["additionalType"] == ["AIGeneratedContent"]
    assert final["channelData"]["feedbackLoopEnabled"] is True


async def test_a_slow_answer_is_delivered_proactively(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> None:
    source = _scripted(_scripted_answer, 0.8, ["Guests ", "get 24 hours [1]."])
    settings = teams_settings(demo_settings, double, reply_window_s=1)
    async with running(settings, teams=lambda s: build_teams(s, progress=source)) as (url, _):
        activity = ask(double, "How long does a guest pass last?", PERSONAL, "personal")
        status, _ = await post(url, activity, double.sign())
        # The turn ended after the typing indicator and the informative update...
        assert status == 200
        assert answers(double, PERSONAL) == []
        sent_in_turn = double.sent(PERSONAL)
        assert [c["reply_to"] for c in sent_in_turn] == [activity["id"]] * len(sent_in_turn)
        # ...and the answer arrives later, posted into the conversation (no inbound
        # activity to reply to) with the reference stored in the database.
        await until(lambda: answers(double, PERSONAL), "the proactive answer")
    final = double.sent(PERSONAL)[-1]
    assert final["reply_to"] is None and final["activity"]["type"] == "message"
    assert _stream_type(final["activity"]) == "final"
    assert double.violations == []


async def test_one_stream_per_chat_a_second_question_gets_a_plain_reply(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> None:
    source = _scripted(_scripted_answer, 1.05, ["Guests ", "get 24 hours [1]."])
    settings = teams_settings(demo_settings, double)
    async with running(settings, teams=lambda s: build_teams(s, progress=source)) as (url, _):
        first = ask(double, "How long does a guest pass last?", PERSONAL, "personal")
        second = ask(double, "And how many devices?", PERSONAL, "personal")
        results = await asyncio.gather(
            post(url, first, double.sign()), post(url, second, double.sign())
        )
        assert [status for status, _ in results] == [200, 200]
        await until(lambda: len(answers(double, PERSONAL)) == 2, "both answers")
    assert double.violations == []  # Teams never saw a second stream open in the chat
    finals = [_stream_type(a) for a in answers(double, PERSONAL)]
    assert sorted(finals, key=str) == [None, "final"]  # one streamed, one plain


async def test_the_member_list_is_cached(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, _ = service
    for number, text in enumerate(["How many PTO days do I get?", "What is the VPN portal?"]):
        activity = ask(double, text, GROUP, "groupChat", mention=True)
        assert (await post(url, activity, double.sign()))[0] == 200
        await until(lambda n=number: len(answers(double, GROUP)) == n + 1, "the answer")
    paged = [c for c in double.calls if c["path"].endswith(f"{GROUP}/pagedmembers")]
    assert len(paged) == 1  # two members a page: one page, read once for both questions
