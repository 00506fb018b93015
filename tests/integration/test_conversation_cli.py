"""The conversation layer from the command line, as an operator runs it (the CLI in a
subprocess): `say REQUEST_ID "text"` posting through the Slack Web API double into the
thread the request came from, and votes from the neutral table in `trace show`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

from adapters.db.conversations import SqlConversationStore
from adapters.db.engine import create_engine, upgrade
from bot.settings import Settings
from core.conversation.types import ConversationRef, PostedAnswer
from tests.integration.test_slack import JORDAN, PRIYA, PUBLIC_CHANNEL, SECRET, send, settle
from tests.support.cli import assert_usage_error, run
from tests.support.service import running
from tests.support.slack_api import (
    BotInstallation,
    SlackApiDouble,
    app_mention,
    block_action,
    event_payload,
)

THREAD = "1700000010.000100"


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-test") as double:
        yield double


@pytest.fixture
def double(slack_api: SlackApiDouble) -> SlackApiDouble:
    slack_api.reset(directory=True)
    slack_api.add_user(JORDAN, "jordan.kim@harborlight.example")
    slack_api.add_channel(PUBLIC_CHANNEL, kind="public", members=[JORDAN])
    return slack_api


def config_file(tmp_path: Path, double: SlackApiDouble, data_dir: Path) -> Path:
    path = tmp_path / "answerdesk.yaml"
    path.write_text(
        f"data_dir: {data_dir}\nslack:\n  api_base_url: {double.url}\n  post_interval_s: 0.01\n"
    )
    return path


async def say(tmp_path: Path, config: Path, *args: str, **env: str):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(
        run, tmp_path, "say", *args, env={"ANSWERDESK_CONFIG": str(config), **env}
    )


@dataclass(frozen=True)
class Answered:
    url: str  # the running service
    request_id: str
    config: Path  # the CLI's configuration file


@pytest.fixture
async def answered(
    demo_settings: Settings,
    double: SlackApiDouble,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[Answered]:
    """A question answered in a thread by the running service."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    settings = Settings(
        data_dir=demo_settings.data_dir,
        slack={"api_base_url": double.url, "post_interval_s": 0.01},
    )
    async with running(settings) as (url, _):
        event = app_mention(
            "<@UBOT> How long does a guest Wi-Fi pass last?",
            user=JORDAN,
            channel=PUBLIC_CHANNEL,
            ts=THREAD,
        )
        await send(url, event_payload(event, event_id="Ev-say-1"))
        await settle(double)
        blocks = double.calls_to("chat.update")[0]["args"]["blocks"]
        request_id = next(
            e["value"] for b in blocks for e in b.get("elements", []) if e.get("type") == "button"
        )
        yield Answered(url, request_id, config_file(tmp_path, double, demo_settings.data_dir))


async def test_say_posts_into_the_thread_of_the_request(
    answered: Answered, double: SlackApiDouble, tmp_path: Path
) -> None:
    request_id, config = answered.request_id, answered.config
    before = len(double.calls_to("chat.postMessage"))
    done = await say(
        tmp_path,
        config,
        request_id,
        "A colleague from IT will call you today.",
        "--json",
        SLACK_BOT_TOKEN="xoxb-test",
    )
    assert done.returncode == 0, done.stderr
    [call] = double.calls_to("chat.postMessage")[before:]
    args = call["args"]
    assert (args["channel"], args["thread_ts"]) == (PUBLIC_CHANNEL, THREAD)
    assert "A colleague from IT will call you today." in args["text"]
    assert request_id in json.dumps(args["blocks"])  # the footer names the request
    assert call["token"] == "xoxb-test"
    assert json.loads(done.stdout) == {
        "request_id": request_id,
        "platform": "slack",
        "tenant": "T0HARBOR1",
        "conversation": PUBLIC_CHANNEL,
        "thread": THREAD,
        "message_id": call["response"]["ts"],
    }
    assert double.messages()[-1]["thread_ts"] == THREAD

    done = await say(tmp_path, config, request_id, "Done.", SLACK_BOT_TOKEN="xoxb-test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"posted into slack conversation {PUBLIC_CHANNEL}, thread {THREAD}"
    )


async def test_say_refuses_bad_input_and_writes_nothing(
    answered: Answered, double: SlackApiDouble, tmp_path: Path
) -> None:
    request_id, config = answered.request_id, answered.config
    before = len(double.calls)
    token = {"SLACK_BOT_TOKEN": "xoxb-test"}
    done = await say(tmp_path, config, "0123456789abcdef", "hello", **token)
    assert_usage_error(done, "no answer was posted with request id 0123456789abcdef")
    assert_usage_error(await say(tmp_path, config, request_id, "   ", **token), "text is empty")
    # No credentials to post with: the reason, naming the variables.
    done = await say(tmp_path, config, request_id, "hello", SLACK_BOT_TOKEN="")
    assert_usage_error(done, "SLACK_BOT_TOKEN", "SLACK_CLIENT_ID")
    assert_usage_error(await say(tmp_path, config, **{}), "the following arguments")
    assert double.calls[before:] == []


async def test_a_refused_post_exits_1_saying_so(
    answered: Answered, double: SlackApiDouble, tmp_path: Path
) -> None:
    request_id, config = answered.request_id, answered.config
    double.fail("chat.postMessage", "error:channel_not_found", "error:channel_not_found")
    done = await say(tmp_path, config, request_id, "hello", SLACK_BOT_TOKEN="xoxb-test")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"say: slack did not accept the message for request {request_id} (see the log)"
    )
    assert "channel_not_found" in done.stderr  # the log line says why
    assert "xoxb-test" not in done.stderr


async def test_votes_show_in_trace_show(
    answered: Answered, double: SlackApiDouble, tmp_path: Path
) -> None:
    url, request_id, config = answered.url, answered.request_id, answered.config
    for action, user in (("answerdesk_feedback_up", JORDAN), ("answerdesk_feedback_down", PRIYA)):
        click = block_action(
            action, request_id, user=user, channel=PUBLIC_CHANNEL, message_ts="x", thread_ts=THREAD
        )
        assert (await send(url, click))[0] == 200
    deadline = time.monotonic() + 30
    while True:
        done = await asyncio.to_thread(
            run,
            tmp_path,
            "trace",
            "show",
            request_id,
            "--json",
            env={"ANSWERDESK_CONFIG": str(config)},
        )
        assert done.returncode == 0, done.stderr
        feedback = json.loads(done.stdout)["feedback"]
        if len(feedback) == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert sorted((v["user"], v["value"]) for v in feedback) == sorted([(JORDAN, 1), (PRIYA, -1)])


# --- multi-workspace: the token of the conversation's installation ------------------------

ACME = BotInstallation("xoxb-acme-1", team_id="T0ACME", bot_user_id="U0ACMEBOT")
GRID = BotInstallation(
    "xoxb-grid-3", enterprise_id="E0GRID", is_enterprise_install=True, bot_user_id="W0GRIDBOT"
)
CLIENT_ID = "1111.2222"


async def seed(data_dir: Path) -> None:
    """Installations as the OAuth flow stores them, and three answered requests."""
    url = f"sqlite+aiosqlite:///{data_dir / 'answerdesk.db'}"
    data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(url)
    engine = create_engine(url)
    try:
        installs = AsyncSQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=engine)
        for bot in (ACME, GRID):
            await installs.async_save(
                Installation(
                    app_id="A1",
                    enterprise_id=bot.enterprise_id,
                    team_id=None if bot.is_enterprise_install else bot.team_id,
                    bot_token=bot.token,
                    bot_id="B1",
                    bot_user_id=bot.bot_user_id,
                    user_id="U0INSTALLER",
                    is_enterprise_install=bot.is_enterprise_install,
                )
            )
        store = SqlConversationStore(engine)
        for request_id, tenant, extra in (
            ("acme00000000001", "T0ACME", {}),
            ("grid00000000001", "T0GRIDWS1", {"enterprise_id": "E0GRID"}),
            ("beta00000000001", "T0BETA", {}),  # a workspace without an installation
        ):
            where = ConversationRef("slack", tenant, "C0GEN", "5.0001", "5.0001", extra)
            await store.record(PostedAnswer(request_id, where, "U0ASKER", "a question"))
    finally:
        await engine.dispose()


def test_say_uses_the_installation_of_the_requests_workspace(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    asyncio.run(seed(data_dir))
    with SlackApiDouble(client_id=CLIENT_ID) as double:
        double.add_installation(ACME)
        double.add_installation(GRID)
        config = config_file(tmp_path, double, data_dir)
        env = {"ANSWERDESK_CONFIG": str(config), "SLACK_CLIENT_ID": CLIENT_ID}
        env |= {"SLACK_BOT_TOKEN": "", "SLACK_CLIENT_SECRET": "", "SLACK_SIGNING_SECRET": ""}
        for request_id in ("acme00000000001", "grid00000000001"):
            done = run(tmp_path, "say", request_id, "hello", env=env)
            assert done.returncode == 0, done.stderr
        acme, grid = double.calls_to("chat.postMessage")
        assert (acme["token"], acme["args"]["team_id"]) == (ACME.token, "T0ACME")
        # The org-wide install's token, naming the workspace as Bolt does for its events.
        assert (grid["token"], grid["args"]["team_id"]) == (GRID.token, "T0GRIDWS1")
        assert all(c["args"]["thread_ts"] == "5.0001" for c in (acme, grid))

        done = run(tmp_path, "say", "beta00000000001", "hello", env=env)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1] == (
            "say: no Slack installation for workspace T0BETA"
        )
        assert len(double.calls_to("chat.postMessage")) == 2
