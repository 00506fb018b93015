"""The Teams adapter over real HTTP: activities signed as the Bot Framework signs them, posted
to the running aiohttp app; the bot's botbuilder client calling a local Bot Framework
double (OpenID metadata + JWKS, token endpoint, connector with members, streaming and 1:1
chat creation); answers from the demo corpus, streamed by a model double where a model is
configured; votes, tickets and agents' replies through the conversation layer, checked with
the command line in a subprocess as operators run it."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.settings import EventSettings, Settings
from bot.wiring import Services
from core.conversation.messages import OFFER_HUMAN_TEXT
from tests.support.botframework import BotFrameworkDouble, member, message
from tests.support.cli import assert_usage_error, run
from tests.support.model_server import ModelServer, unused_port
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
WIFI = "How long does a guest Wi-Fi pass last?"
TEAMS_ENV = {
    "MICROSOFT_APP_ID": APP_ID,
    "MICROSOFT_APP_PASSWORD": PASSWORD,
    "MICROSOFT_APP_TENANT_ID": TENANT,
}


@pytest.fixture(scope="module")
def framework() -> Iterator[BotFrameworkDouble]:
    with BotFrameworkDouble(APP_ID, PASSWORD) as double:
        yield double


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    with ModelServer() as running_model:
        yield running_model


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
    for name, value in TEAMS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANSWERDESK_TEST_MODEL_KEY", "sk-test")


def teams_settings(
    base: Settings, double: BotFrameworkDouble, model_url: str | None = None, **teams: Any
) -> Settings:
    """The demo corpus with Teams pointed at the double; with ``model_url``, answers are
    written (and streamed) by that model server, and the semantic cache is off so each is."""
    extra: dict[str, Any] = {}
    if model_url is not None:
        tiers = [
            {
                "name": name,
                "model": f"openai/{name}",
                "api_base": model_url,
                "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
                "timeout_s": 10,
            }
            for name in ("fast", "strong")
        ]
        extra = {"models": {"tiers": tiers, "deadline_s": 20}, "cache": {"enabled": False}}
    return Settings(
        data_dir=base.data_dir,
        teams={
            "openid_metadata_url": double.metadata_url,
            "token_url": double.token_url,
            **teams,
        },
        handoff={"delivery": {"inline_timeout_s": 3, "backoff_s": 0.2, "poll_s": 0.2}},
        **extra,
    )


def config_file(tmp_path: Path, settings: Settings) -> Path:
    """The same configuration as a YAML file, for the command line."""
    path = tmp_path / "answerdesk.yaml"
    teams = settings.teams
    path.write_text(
        f"data_dir: {settings.data_dir}\n"
        "teams:\n"
        f"  openid_metadata_url: {teams.openid_metadata_url}\n"
        f"  token_url: {teams.token_url}\n"
    )
    return path


async def cli(tmp_path: Path, config: Path, *args: str, **env: str) -> Any:
    env = {"ANSWERDESK_CONFIG": str(config), **TEAMS_ENV, **env}
    return await asyncio.to_thread(run, tmp_path, *args, env=env)


@pytest.fixture
async def service(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> AsyncIterator[tuple[str, Services]]:
    async with running(teams_settings(demo_settings, double)) as pair:
        yield pair


@pytest.fixture
def paced(model: ModelServer) -> ModelServer:
    """The model double, writing at a pace people can watch: its first words after 300 ms,
    then 8 words a second (an answer takes 2–3 s)."""
    model.reset()
    for tier in ("fast", "strong"):
        model.set_pacing(tier, first_token_ms=300, tokens_per_s=8)
    return model


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


def press(double: BotFrameworkDouble, action: str, request_id: str, user: dict, **extra: Any):
    """A button of an answer's Adaptive Card (Action.Submit), pressed in the group chat."""
    return ask(
        double, "", GROUP, "groupChat", user=user,
        value={"action": action, "request_id": request_id}, **extra,
    )  # fmt: skip


def feedback(double: BotFrameworkDouble, answer_id: str, reaction: str, user: dict) -> dict:
    """Teams' feedback loop on the bot's message ``answer_id``."""
    return {
        **ask(double, "", GROUP, "groupChat", user=user),
        "type": "invoke",
        "name": "message/submitAction",
        "replyToId": answer_id,
        "value": {
            "actionName": "feedback",
            "actionValue": {"reaction": reaction, "feedback": '{"feedbackText":"Too vague"}'},
        },
    }


async def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return found


def answers(double: BotFrameworkDouble, conversation: str) -> list[dict]:
    """The bot's messages (not typing or stream updates) in a conversation."""
    return [c["activity"] for c in double.sent(conversation) if c["activity"]["type"] == "message"]


def sent_with(double: BotFrameworkDouble, conversation: str, needle: str) -> list[dict]:
    """The calls that sent a message containing ``needle`` into the conversation."""
    return [
        c
        for c in double.sent(conversation)
        if c["activity"]["type"] == "message" and needle in (c["activity"].get("text") or "")
    ]


def request_id_in(activity: dict) -> str:
    return re.search(r"Request (\w+)", activity["text"]).group(1)


def card_actions(activity: dict) -> list[dict]:
    return [
        action
        for attachment in activity.get("attachments") or []
        for action in attachment["content"].get("actions", [])
    ]


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


# --- transport, authentication, activities ----------------------------------------------


async def test_personal_question_typing_then_streamed_cited_answer(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, services = service
    activity = ask(double, WIFI, PERSONAL, "personal")
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
    request_id = request_id_in(final)
    await services.traces.flush()
    trace = await services.traces.get(request_id)
    assert trace is not None and trace["platform"] == "teams" and trace["audience"] == "dm"


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
    # A tenant the configuration does not allow: refused, though the token is good.
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


async def test_group_chat_answers_only_what_every_member_may_read_the_full_answer_privately(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    url, services = service
    group = ask(double, SALARY, GROUP, "groupChat", mention=True)
    assert (await post(url, group, double.sign()))[0] == 200
    await until(lambda: answers(double, GROUP), "the group answer")
    reply = answers(double, GROUP)[0]
    assert not any(figure in json.dumps(reply) for figure in FIGURES)
    assert _stream_type(reply) is None  # no streaming outside 1:1 chats
    assert double.violations == []
    # The member list was read page by page (two members a page).
    assert any("/pagedmembers" in c["path"] for c in double.calls)
    request_id = request_id_in(reply)
    await services.traces.flush()
    trace = await services.traces.get(request_id)
    assert trace["audience"] == (
        "members:priya.raman@harborlight.example,tomas.reyes@harborlight.example"
    )
    # Priya could read more: the card offers her the full answer privately.
    assert "Ask me in a direct message" in reply["text"]  # the notice, as plain text
    private = next(a for a in card_actions(reply) if a["data"]["action"] == "private_answer")
    assert private["title"] == "Send me the full answer privately"
    assert private["data"]["request_id"] == request_id
    # Tomas pressing it gets nothing: only the asker may have the asker-only answer.
    assert (await post(url, press(double, "private_answer", request_id, TOMAS), double.sign()))[
        0
    ] == 200
    await asyncio.sleep(1.0)
    assert double.created == []
    # Priya pressing it gets it in her 1:1 chat with the bot, answered for her alone.
    assert (await post(url, press(double, "private_answer", request_id, PRIYA), double.sign()))[
        0
    ] == 200
    [created] = await until(lambda: double.created, "the 1:1 chat")
    assert created["parameters"]["members"] == [{"id": PRIYA["id"]}]
    assert created["parameters"]["isGroup"] is False
    assert created["parameters"]["bot"]["id"] == BOT
    [privately] = await until(lambda: answers(double, created["id"]), "the private answer")
    assert any(figure in privately["text"] for figure in FIGURES)
    assert len(answers(double, GROUP)) == 1  # nothing more in the group chat
    assert not any(figure in json.dumps(double.sent(GROUP)) for figure in FIGURES)
    await services.traces.flush()
    private_trace = await services.traces.get(request_id_in(privately))
    assert private_trace["audience"] == "dm" and private_trace["platform"] == "teams"
    # The same person in her own 1:1 chat reads the HR figures: the refusal was the audience's.
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
    await services.traces.flush()
    trace = await services.traces.get(request_id_in(reply))
    assert trace["question"] == "How do I reset my Okta password?"
    assert trace["asker"] == "jordan.kim@harborlight.example"
    assert trace["audience"].startswith("members:") and "tomas.reyes" in trace["audience"]
    assert any(c["path"].endswith("/members/29:stranger") for c in double.calls)


async def test_a_redelivered_activity_is_answered_once_and_counted(
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
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        metrics = await response.text()
    assert 'answerdesk_dedupe_hits_total{platform="teams"} 1.0' in metrics


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
        {**base, "id": "i1", "type": "invoke", "name": "adaptiveCard/action", "value": {}},
        ask(double, "", GROUP, "groupChat", mention=True),  # a bare mention: nothing asked
    ]
    for activity in ignored:
        status, body = await post(url, activity, double.sign())
        assert status == 200, activity["type"]
        if activity["type"] == "invoke":
            assert body == {}
    await asyncio.sleep(0.5)
    assert len(double.sent()) == 1


async def test_degraded_answer_carries_a_visible_notice(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/v1"  # a provider that is down: nothing listens
    settings = teams_settings(demo_settings, double, dead)
    async with running(settings) as (url, _):
        activity = ask(double, "How many PTO days do I get after 3 years?", GROUP, "groupChat")
        assert (await post(url, activity, double.sign()))[0] == 200
        await until(lambda: answers(double, GROUP), "the answer")
    reply = answers(double, GROUP)[0]
    assert "⚠️ **Degraded mode**" in reply["text"]
    assert re.search(r"⚠️ .*model", reply["text"], re.IGNORECASE)
    _assert_citations_match(reply)


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


# --- votes, the offer of a person, tickets, agents' replies --------------------------------


async def test_feedback_votes_show_in_trace_show_and_a_second_dislike_offers_a_person(
    service: tuple[str, Services], double: BotFrameworkDouble, tmp_path: Path
) -> None:
    url, services = service
    question = ask(double, "How many PTO days do I get after 3 years?", GROUP, "groupChat")
    assert (await post(url, question, double.sign()))[0] == 200
    [answer_call] = await until(lambda: sent_with(double, GROUP, "Request "), "the answer")
    request_id = request_id_in(answer_call["activity"])
    votes = [(PRIYA, "like"), (TOMAS, "dislike"), (PRIYA, "dislike")]  # Priya changes her mind
    for user, reaction in votes:
        status, body = await post(
            url, feedback(double, answer_call["id"], reaction, user), double.sign()
        )
        assert (status, body) == (200, {})
    # Two 👎 in the chat: a person is offered, once, with the button to ask for one.
    [offer] = await until(lambda: sent_with(double, GROUP, OFFER_HUMAN_TEXT), "the offer")
    assert [a["data"] for a in card_actions(offer["activity"])] == [
        {"action": "talk_to_human", "request_id": request_id}
    ]
    status, _ = await post(
        url, feedback(double, answer_call["id"], "dislike", STRANGER), double.sign()
    )
    assert status == 200
    # Feedback on a message that shows no answer (the offer itself) stores nothing.
    assert (await post(url, feedback(double, offer["id"], "dislike", TOMAS), double.sign()))[
        0
    ] == 200
    await asyncio.sleep(0.5)
    assert len(sent_with(double, GROUP, OFFER_HUMAN_TEXT)) == 1

    done = await cli(
        tmp_path, config_file(tmp_path, services.settings), "trace", "show", request_id, "--json"
    )
    assert done.returncode == 0, done.stderr
    stored = sorted((v["user"], v["value"]) for v in json.loads(done.stdout)["feedback"])
    assert stored == sorted(
        [(PRIYA["aadObjectId"], -1), (TOMAS["aadObjectId"], -1), (STRANGER["aadObjectId"], -1)]
    )


async def test_talk_to_a_human_opens_one_ticket_and_the_agents_reply_reaches_the_chat(
    service: tuple[str, Services], double: BotFrameworkDouble, tmp_path: Path
) -> None:
    url, services = service
    config = config_file(tmp_path, services.settings)
    question = ask(double, WIFI, GROUP, "groupChat", mention=True)
    assert (await post(url, question, double.sign()))[0] == 200
    [answer_call] = await until(lambda: sent_with(double, GROUP, "Request "), "the answer")
    answer = answer_call["activity"]
    request_id = request_id_in(answer)
    assert card_actions(answer)[0]["title"] == "Talk to a human"
    click = press(double, "talk_to_human", request_id, TOMAS)
    assert (await post(url, click, double.sign()))[0] == 200
    assert (await post(url, click, double.sign()))[0] == 200  # Teams redelivers the submit
    again = press(double, "talk_to_human", request_id, PRIYA)  # another click, another person
    assert (await post(url, again, double.sign()))[0] == 200
    [notice] = await until(lambda: sent_with(double, GROUP, "ticket AD-1"), "the ticket notice")
    assert "A person will follow up" in notice["activity"]["text"]

    listed = await cli(tmp_path, config, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["key"] for t in json.loads(listed.stdout)] == ["AD-1"]
    shown = await cli(tmp_path, config, "tickets", "show", "AD-1", "--json")
    ticket = json.loads(shown.stdout)
    assert ticket["content"]["question"] == WIFI
    assert ticket["content"]["asker"]["platform"] == "teams"
    assert ticket["content"]["asker"]["user_id"] == TOMAS["aadObjectId"]
    link = ticket["content"]["conversation"]["link"]
    assert link.startswith("https://teams.microsoft.com/l/message/19%3Agroup-chat-priya-tomas")
    assert f"/{question['id']}?" in link and "contextType" in link

    # The agent answers from the command line: posted into the chat, outside any turn.
    replied = await cli(
        tmp_path, config, "tickets", "reply", "AD-1", "Your pass is at the front desk.",
        "--as", "Kim", "--json",
    )  # fmt: skip
    assert replied.returncode == 0, replied.stderr
    assert [m["delivery"] for m in json.loads(replied.stdout)["messages"]] == ["delivered"]
    [reply] = sent_with(double, GROUP, "front desk")
    assert "Kim" in reply["activity"]["text"] and "AD-1" in reply["activity"]["text"]
    assert reply["reply_to"] is None  # a proactive message into the conversation
    said = await cli(tmp_path, config, "say", request_id, "IT will call you today.", "--json")
    assert said.returncode == 0, said.stderr
    assert json.loads(said.stdout)["platform"] == "teams"
    [say] = sent_with(double, GROUP, "IT will call you today.")
    assert json.loads(said.stdout)["message_id"] == say["id"]
    unconfigured = await cli(tmp_path, config, "say", request_id, "Hi", MICROSOFT_APP_PASSWORD="")
    assert_usage_error(unconfigured, "MICROSOFT_APP_PASSWORD")
    assert double.violations == []


async def test_outside_a_turn_a_surface_posts_and_updates_with_the_stored_reference(
    service: tuple[str, Services], double: BotFrameworkDouble
) -> None:
    from adapters.teams.sdk import BotFrameworkConfig, BotFrameworkTransport
    from adapters.teams.store import TeamsStore
    from adapters.teams.surface import TeamsSurfaces
    from core.conversation.messages import TextMessage
    from core.conversation.ports import Unreachable
    from core.conversation.types import ConversationRef

    url, services = service
    question = ask(double, WIFI, GROUP, "groupChat", mention=True)
    assert (await post(url, question, double.sign()))[0] == 200
    await until(lambda: answers(double, GROUP), "the answer")
    transport = BotFrameworkTransport(
        BotFrameworkConfig(APP_ID, PASSWORD, double.metadata_url, double.token_url)
    )
    surfaces = TeamsSurfaces(lambda: transport, TeamsStore(services.engine))
    where = ConversationRef("teams", TENANT, GROUP)
    surface = await surfaces.open(where)
    posted = await surface.post(where, TextMessage("The VPN is down until 3 pm.", "r-1"))
    assert posted is not None
    assert await surface.update(where, posted, TextMessage("The VPN is back.", "r-1"))
    [put] = [c for c in double.calls if c["method"] == "PUT"]
    assert put["path"].endswith(f"/activities/{posted}") and put["conversation_id"] == GROUP
    assert "The VPN is back." in put["activity"]["text"]
    with pytest.raises(Unreachable, match="never spoken to there"):
        await surfaces.open(ConversationRef("teams", TENANT, "19:unknown@thread.v2"))


# --- streaming, time limits ----------------------------------------------------------------


async def test_streaming_sequence_in_a_personal_chat_with_the_models_words(
    demo_settings: Settings, double: BotFrameworkDouble, paced: ModelServer, teams_env: None
) -> None:
    async with running(teams_settings(demo_settings, double, paced.url)) as (url, services):
        activity = ask(double, WIFI, PERSONAL, "personal")
        assert (await post(url, activity, double.sign()))[0] == 200
        await until(lambda: answers(double, PERSONAL), "the final message")
        await services.traces.flush()
        final = answers(double, PERSONAL)[0]
        trace = await services.traces.get(request_id_in(final))
    assert double.violations == []
    stream = [c["activity"] for c in double.sent(PERSONAL)][1:]  # after the typing indicator
    infos = [next(e for e in a["entities"] if e["type"] == "streaminfo") for a in stream]
    kinds = [i["streamType"] for i in infos]
    assert kinds[0] == "informative" and kinds[-1] == "final"
    streaming = [a["text"] for a, kind in zip(stream, kinds, strict=True) if kind == "streaming"]
    assert len(streaming) >= 2  # the model's words arrived as they were written
    assert streaming[0] and streaming[-1].startswith("According to the sources")
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(streaming))
    assert kinds.index("streaming") > kinds.index("informative")
    assert [i["streamSequence"] for i in infos[:-1]] == list(range(1, len(infos)))
    stream_id = double.sent(PERSONAL)[1]["id"]
    assert all(i["streamId"] == stream_id for i in infos[1:])
    # The final message is the checked answer: the streamed text, cited, labelled.
    assert final["text"].startswith(streaming[-1].split(" See also")[0])
    _assert_citations_match(final)
    (message_entity,) = [e for e in final["entities"] if e.get("@type") == "Message"]
    assert message_entity["additionalType"] == ["AIGeneratedContent"]
    assert final["channelData"]["feedbackLoopEnabled"] is True
    assert trace["progress"]["deltas"] >= 2 and "revised_after_check" not in trace["notices"]


async def test_a_draft_cut_midway_is_followed_not_unsaid_and_the_final_says_revised(
    demo_settings: Settings, double: BotFrameworkDouble, paced: ModelServer, teams_env: None
) -> None:
    paced.set_pacing("fast", first_token_ms=100, tokens_per_s=4)
    paced.script("fast", "cut:6")  # the model fails after six words; the next tier answers
    async with running(teams_settings(demo_settings, double, paced.url)) as (url, _):
        activity = ask(double, WIFI, PERSONAL, "personal")
        assert (await post(url, activity, double.sign()))[0] == 200
        await until(lambda: answers(double, PERSONAL), "the final message")
    assert double.violations == []  # every streamed text extended the one before
    streamed = [
        c["activity"]["text"]
        for c in double.sent(PERSONAL)
        if _stream_type(c["activity"]) == "streaming"
    ]
    assert "Checking again" in streamed[-1]
    final = answers(double, PERSONAL)[0]
    assert "Checking again" not in final["text"]  # the final message replaced the draft
    assert "revised" in final["text"].lower()


async def test_group_chat_gets_the_final_message_only(
    demo_settings: Settings, double: BotFrameworkDouble, paced: ModelServer, teams_env: None
) -> None:
    async with running(teams_settings(demo_settings, double, paced.url)) as (url, _):
        activity = ask(double, WIFI, GROUP, "groupChat", mention=True)
        assert (await post(url, activity, double.sign()))[0] == 200
        await until(lambda: answers(double, GROUP), "the answer")
    assert [c["activity"]["type"] for c in double.sent(GROUP)] == ["typing", "message"]
    final = answers(double, GROUP)[0]
    assert _stream_type(final) is None and final["text"].startswith("According to the sources")
    _assert_citations_match(final)


async def test_a_slow_answer_is_delivered_proactively(
    demo_settings: Settings, double: BotFrameworkDouble, paced: ModelServer, teams_env: None
) -> None:
    paced.set_pacing("fast", first_token_ms=2500, tokens_per_s=20)
    settings = teams_settings(demo_settings, double, paced.url, reply_window_s=1)
    async with running(settings) as (url, _):
        activity = ask(double, WIFI, PERSONAL, "personal")
        status, _ = await post(url, activity, double.sign())
        # The turn ended after the typing indicator and the informative update, without the
        # answer (the model's first words come 2.5 s later)...
        assert status == 200
        assert answers(double, PERSONAL) == []
        first = double.sent(PERSONAL)[0]
        assert first["activity"]["type"] == "typing" and first["reply_to"] == activity["id"]
        # ...which arrives later, posted into the conversation (no inbound activity to reply
        # to) with the conversation's reference.
        await until(lambda: answers(double, PERSONAL), "the proactive answer")
    final = double.sent(PERSONAL)[-1]
    assert final["reply_to"] is None and final["activity"]["type"] == "message"
    assert _stream_type(final["activity"]) == "final"
    assert any(_stream_type(c["activity"]) == "streaming" and c["reply_to"] is None
               for c in double.sent(PERSONAL))  # fmt: skip
    assert double.violations == []


async def test_one_stream_per_chat_a_second_question_gets_a_plain_reply(
    demo_settings: Settings, double: BotFrameworkDouble, paced: ModelServer, teams_env: None
) -> None:
    async with running(teams_settings(demo_settings, double, paced.url)) as (url, _):
        first = ask(double, WIFI, PERSONAL, "personal")
        second = ask(double, "How many devices can use one guest pass?", PERSONAL, "personal")
        results = await asyncio.gather(
            post(url, first, double.sign()), post(url, second, double.sign())
        )
        assert [status for status, _ in results] == [200, 200]
        await until(lambda: len(answers(double, PERSONAL)) == 2, "both answers")
    assert double.violations == []  # Teams never saw a second stream open in the chat
    finals = [_stream_type(a) for a in answers(double, PERSONAL)]
    assert sorted(finals, key=str) == [None, "final"]  # one streamed, one plain


async def test_a_message_a_dead_replica_took_is_answered_by_another_once(
    demo_settings: Settings, double: BotFrameworkDouble, teams_env: None
) -> None:
    """A replica took a message, then died before answering (its claim's lease ran out
    with the message stored on it): this replica's sweeper answers it proactively, once,
    and a redelivery afterwards changes nothing."""
    from adapters.db.conversations import SqlConversationStore
    from adapters.teams.endpoint import activity_key

    settings = teams_settings(demo_settings, double).model_copy(
        update={"events": EventSettings(lease_s=1, sweep_s=0.2)}
    )
    activity = ask(double, WIFI, GROUP, "groupChat", mention=True)
    key = activity_key(TENANT, GROUP, activity["id"])
    async with running(settings) as (url, services):
        claims = SqlConversationStore(services.engine)
        dead = await claims.take(key, "dead-replica", 0.01, {"activity": activity})
        assert dead is not None
        await until(lambda: answers(double, GROUP), "the answer from the other replica")
        assert "24 hours" in answers(double, GROUP)[0]["text"]
        assert await services.leases.expired(("teams:",)) == []
        assert (await post(url, activity, double.sign()))[0] == 200  # a late redelivery
        await asyncio.sleep(1.0)
    assert len(answers(double, GROUP)) == 1
