"""The Slack Web API double, exercised through slack_sdk's real AsyncWebClient (no mocks)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.support.slack_api import (
    BotInstallation,
    SlackApiDouble,
    app_mention,
    block_action,
    dm_message,
    event_payload,
    signed_headers,
    slack_signature,
    validate_failure,
)

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Thinking…*"}}]


@pytest.fixture
def slack() -> Iterator[SlackApiDouble]:
    with SlackApiDouble() as running:
        running.add_user("U1", "ada@harbor.example")
        running.add_user("UEXT", "eve@partner.example", team_id="T0OTHER")
        running.add_channel("C1", kind="public", members=["U1", "U2", "U3", "U4", "UBOT"])
        running.add_channel("GOLD", kind="private", members=["U1", "UBOT"])
        running.add_channel("CNEW", kind="private", members=["U1"], name="hr-private")
        running.add_channel("D1", kind="im", members=["UBOT", "U1"])
        running.add_channel("G2", kind="mpim", members=["U1", "U2", "UBOT"])
        yield running


def client(slack: SlackApiDouble, **kw) -> AsyncWebClient:
    return AsyncWebClient(token=kw.pop("token", "xoxb-test"), base_url=slack.url, **kw)


async def test_url_and_auth_test(slack: SlackApiDouble) -> None:
    assert slack.url == f"http://127.0.0.1:{slack.port}/api/"
    resp = await client(slack).auth_test()
    assert resp["ok"] is True
    assert (resp["user_id"], resp["team_id"], resp["bot_id"]) == ("UBOT", "T0HARBOR1", "B1")
    call = slack.calls_to("auth.test")[0]
    assert call["headers"]["authorization"] == "Bearer xoxb-test"
    assert call["status"] == 200


async def test_users_info(slack: SlackApiDouble) -> None:
    web = client(slack)
    user = (await web.users_info(user="U1"))["user"]
    assert user["id"] == "U1"
    assert user["team_id"] == "T0HARBOR1"
    assert user["is_bot"] is False
    assert user["profile"]["email"] == "ada@harbor.example"
    assert (await web.users_info(user="UEXT"))["user"]["team_id"] == "T0OTHER"
    bot = (await web.users_info(user="UBOT"))["user"]
    assert bot["is_bot"] is True and "email" not in bot["profile"]
    with pytest.raises(SlackApiError) as info:
        await web.users_info(user="UNOPE")
    assert info.value.response["error"] == "user_not_found"


async def test_conversations_info_shapes(slack: SlackApiDouble) -> None:
    web = client(slack)
    public = (await web.conversations_info(channel="C1"))["channel"]
    assert public["is_channel"] and not public["is_private"] and not public["is_im"]
    assert public["name"] == "c1"
    legacy = (await web.conversations_info(channel="GOLD"))["channel"]
    assert legacy["is_private"] and legacy["is_group"] and not legacy["is_channel"]
    current = (await web.conversations_info(channel="CNEW"))["channel"]
    assert current["is_private"] and current["is_channel"] and not current["is_group"]
    assert current["name"] == "hr-private"
    im = (await web.conversations_info(channel="D1"))["channel"]
    assert im["is_im"] and im["user"] == "U1" and "name" not in im
    mpim = (await web.conversations_info(channel="G2"))["channel"]
    assert mpim["is_mpim"] and mpim["is_private"] and not mpim["is_im"]
    with pytest.raises(SlackApiError) as info:
        await web.conversations_info(channel="CNOPE")
    assert info.value.response["error"] == "channel_not_found"


async def test_conversations_members_pages(slack: SlackApiDouble) -> None:
    web = client(slack)
    members: list[str] = []
    cursor = None
    pages = 0
    while True:
        resp = await web.conversations_members(channel="C1", cursor=cursor, limit=200)
        pages += 1
        members += resp["members"]
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert members == ["U1", "U2", "U3", "U4", "UBOT"]
    assert pages == 3
    # slack_sdk's own pagination (async iteration over the response) follows the cursor too.
    collected = []
    async for page in await web.conversations_members(channel="C1"):
        collected += page["members"]
    assert collected == members
    slack.members_page_size = 10
    assert (await web.conversations_members(channel="C1"))["members"] == members
    with pytest.raises(SlackApiError) as info:
        await web.conversations_members(channel="C1", cursor="garbage!")
    assert info.value.response["error"] == "invalid_cursor"


async def test_post_update_and_message_state(slack: SlackApiDouble) -> None:
    web = client(slack)
    first = await web.chat_postMessage(channel="C1", text="Thinking…", blocks=BLOCKS)
    second = await web.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])
    assert first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    assert first["ts"] == "1700000000.000100"
    assert first["message"]["blocks"] == BLOCKS
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Answer [1]"}}]
    updated = await web.chat_update(channel="C1", ts=first["ts"], text="Answer", blocks=new_blocks)
    assert updated["ts"] == first["ts"]
    assert slack.messages() == [
        {
            "channel": "C1",
            "ts": first["ts"],
            "thread_ts": None,
            "text": "Answer",
            "blocks": new_blocks,
        },
        {
            "channel": "C1",
            "ts": second["ts"],
            "thread_ts": first["ts"],
            "text": "reply",
            "blocks": None,
        },
    ]
    post = slack.calls_to("chat.postMessage")[0]
    assert post["headers"]["content-type"].startswith("application/json")
    assert post["args"]["blocks"] == BLOCKS
    with pytest.raises(SlackApiError) as info:
        await web.chat_update(channel="C1", ts="1.2", text="x")
    assert info.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as info, pytest.warns(UserWarning, match="text"):
        await web.chat_postMessage(channel="C1")
    assert info.value.response["error"] == "no_text"


async def test_wire_format_per_method(slack: SlackApiDouble) -> None:
    """Which encoding slack_sdk uses for each method (the double accepts all of them)."""
    web = client(slack)
    await web.auth_test()
    await web.users_info(user="U1")
    await web.reactions_add(channel="C1", timestamp="1.1", name="eyes")
    await web.assistant_threads_setStatus(channel_id="D1", thread_ts="1.1", status="is typing…")
    await web.chat_postMessage(channel="C1", text="plain, no blocks")
    by_method = {c["method"]: c for c in slack.calls}
    assert by_method["auth.test"]["http_method"] == "POST"
    assert by_method["users.info"]["http_method"] == "GET"
    reaction = by_method["reactions.add"]
    assert reaction["http_method"] == "POST"
    assert reaction["args"] == {"channel": "C1", "timestamp": "1.1", "name": "eyes"}
    # Form content type declared, but the arguments travel in the query string; the body is empty.
    assert reaction["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert reaction["query"] == reaction["args"] and reaction["body_bytes"] == 0
    for method in ("assistant.threads.setStatus", "chat.postMessage"):
        assert by_method[method]["headers"]["content-type"].startswith("application/json")
    with pytest.raises(SlackApiError) as info:
        await web.reactions_add(channel="C1", timestamp="1.1", name="eyes")
    assert info.value.response["error"] == "already_reacted"


async def test_form_body_with_json_string_blocks(slack: SlackApiDouble) -> None:
    web = client(slack)
    resp = await web.api_call(
        "chat.postMessage", data={"channel": "C1", "text": "form", "blocks": json.dumps(BLOCKS)}
    )
    assert resp["ok"]
    call = slack.calls_to("chat.postMessage")[0]
    assert call["headers"]["content-type"].startswith("application/x-www-form-urlencoded")
    assert call["args"]["blocks"] == BLOCKS
    assert slack.messages()[0]["blocks"] == BLOCKS


async def test_post_ephemeral(slack: SlackApiDouble) -> None:
    resp = await client(slack).chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert resp["ok"] and resp["message_ts"]
    assert slack.ephemerals()[0]["user"] == "U1"
    assert slack.ephemerals()[0]["text"] == "only you"
    assert slack.messages() == []


async def test_scripted_429_without_retry_handler(slack: SlackApiDouble) -> None:
    slack.fail("chat.postMessage", "429:7")
    with pytest.raises(SlackApiError) as info:
        await client(slack).chat_postMessage(channel="C1", text="hi")
    response = info.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response["error"] == "ratelimited"
    assert [c["status"] for c in slack.calls_to("chat.postMessage")] == [429]
    assert slack.messages() == []


async def test_scripted_429_retried_by_rate_limit_handler(slack: SlackApiDouble) -> None:
    slack.fail("chat.postMessage", "429:0", "429:0")
    web = client(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    started = time.monotonic()
    resp = await web.chat_postMessage(channel="C1", text="hi")
    assert resp["ok"]
    assert time.monotonic() - started < 5
    assert [c["status"] for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert len(slack.messages()) == 1


async def test_scripted_500_retried_by_server_error_handler(slack: SlackApiDouble) -> None:
    slack.fail("users.info", "500")
    web = client(slack, retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)])
    assert (await web.users_info(user="U1"))["user"]["id"] == "U1"
    assert [c["status"] for c in slack.calls_to("users.info")] == [500, 200]
    slack.fail("users.info", "500")
    with pytest.raises(SlackApiError) as info:
        await client(slack).users_info(user="U1")
    assert info.value.response.status_code == 500


async def test_scripted_error_code(slack: SlackApiDouble) -> None:
    slack.fail("conversations.info", "error:missing_scope")
    web = client(slack)
    with pytest.raises(SlackApiError) as info:
        await web.conversations_info(channel="C1")
    assert info.value.response.status_code == 200
    assert info.value.response["error"] == "missing_scope"
    assert (await web.conversations_info(channel="C1"))["ok"]


def test_validate_failure() -> None:
    for good in ("429", "429:3", "500", "503", "error:not_in_channel"):
        assert validate_failure(good) == good
    for bad in ("428", "429:x", "error:", "hang"):
        with pytest.raises(ValueError):
            validate_failure(bad)


async def test_invalid_token_and_unknown_method(slack: SlackApiDouble) -> None:
    with pytest.raises(SlackApiError) as info:
        await client(slack, token="xoxb-wrong").auth_test()
    assert info.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as info:
        await client(slack).api_call("nope.nothing")
    assert info.value.response["error"] == "unknown_method"


def test_plain_http_and_reset(slack: SlackApiDouble) -> None:
    """Any HTTP client works (sync, from another thread); ``token`` may be a form field."""
    body = urllib.parse.urlencode({"token": "xoxb-test", "channel": "C1", "text": "x"}).encode()
    with urllib.request.urlopen(slack.url + "chat.postMessage", data=body, timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    slack.fail("auth.test", "500")
    slack.reset()
    assert slack.calls == [] and slack.messages() == []
    with urllib.request.urlopen(slack.url + "auth.test?token=xoxb-test", timeout=5) as resp:
        assert json.loads(resp.read())["user_id"] == "UBOT"  # the scripted 500 was cleared
    slack.reset(directory=True)
    with urllib.request.urlopen(
        slack.url + "users.info?token=xoxb-test&user=U1", timeout=5
    ) as resp:
        assert json.loads(resp.read())["error"] == "user_not_found"


def test_not_started_and_restart() -> None:
    double = SlackApiDouble()
    with pytest.raises(RuntimeError):
        _ = double.url
    with double:
        assert double.url.endswith("/api/")
    double.stop()  # idempotent


# -- signing helpers ---------------------------------------------------------------------


def test_signature_matches_slack_sdk_verifier() -> None:
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    body = json.dumps(
        event_payload(
            app_mention("<@UBOT> leave policy?", user="U1", channel="C1", ts="1.000100"),
            event_id="Ev1",
        )
    ).encode()
    now = int(time.time())
    headers = signed_headers(secret, body, timestamp=now, retry_num=1, retry_reason="http_timeout")
    verifier = SignatureVerifier(secret)
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert verifier.is_valid_request(body, headers)
    assert headers["X-Slack-Retry-Num"] == "1"
    assert headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert headers["Content-Type"] == "application/json"
    assert not verifier.is_valid(body + b" ", str(now), headers["X-Slack-Signature"])
    assert not SignatureVerifier("other").is_valid(body, str(now), headers["X-Slack-Signature"])
    # Slack's documented example.
    example_body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        slack_signature(secret, "1531420618", example_body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_stale_timestamp_rejected_by_verifier() -> None:
    body = b"{}"
    headers = signed_headers("s", body, timestamp=int(time.time()) - 3600)
    assert not SignatureVerifier("s").is_valid_request(body, headers)


def test_event_payloads() -> None:
    mention = app_mention("<@UBOT> hi", user="U1", channel="C1", ts="2.0", thread_ts="1.0")
    assert mention["type"] == "app_mention" and mention["thread_ts"] == "1.0"
    assert "thread_ts" not in app_mention("x", user="U1", channel="C1", ts="2.0")
    dm = dm_message("hello", user="U1", channel="D1", ts="3.0")
    assert dm["type"] == "message" and dm["channel_type"] == "im"
    envelope = event_payload(dm, event_id="Ev2", enterprise_id="E1")
    assert envelope["type"] == "event_callback"
    assert envelope["event"] == dm and envelope["event_id"] == "Ev2"
    assert envelope["team_id"] == "T0HARBOR1" and envelope["api_app_id"] == "A1"
    assert envelope["authorizations"][0]["enterprise_id"] == "E1"
    assert isinstance(envelope["event_time"], int)


def test_block_action_body() -> None:
    body = block_action(
        "feedback_up", "q-42", user="U1", channel="C1", message_ts="5.0", thread_ts="4.0"
    )
    assert body.startswith(b"payload=")
    fields = urllib.parse.parse_qs(body.decode())
    payload = json.loads(fields["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U1", "team_id": "T0HARBOR1"}
    assert payload["channel"] == {"id": "C1"}
    assert payload["message"]["ts"] == "5.0" and payload["message"]["thread_ts"] == "4.0"
    assert payload["container"]["message_ts"] == "5.0"
    action = payload["actions"][0]
    assert (action["action_id"], action["value"], action["type"]) == (
        "feedback_up",
        "q-42",
        "button",
    )
    headers = signed_headers("s", body, content_type="application/x-www-form-urlencoded")
    assert SignatureVerifier("s").is_valid_request(body, headers)


# -- several installations and oauth.v2.access ---------------------------------------------

WORKSPACE = BotInstallation(
    "xoxb-acme", team_id="T0ACME", team_name="Acme Co", bot_user_id="UACMEBOT", bot_id="BACME"
)
ORG = BotInstallation(
    "xoxb-org",
    enterprise_id="E0GRID",
    enterprise_name="Grid",
    is_enterprise_install=True,
    bot_user_id="WGRIDBOT",
)


def test_installation_shapes_are_checked() -> None:
    with pytest.raises(ValueError):
        BotInstallation("xoxb-x")  # a workspace install needs its team
    with pytest.raises(ValueError):
        BotInstallation("xoxb-x", team_id="T1", is_enterprise_install=True)
    with pytest.raises(ValueError):
        BotInstallation("xoxb-x", is_enterprise_install=True)  # and an org its enterprise


async def test_each_token_is_its_installation_and_every_call_records_its_token(
    slack: SlackApiDouble,
) -> None:
    slack.add_installation(WORKSPACE)
    slack.add_installation(ORG)
    acme = await client(slack, token="xoxb-acme").auth_test()
    assert (acme["team_id"], acme["user_id"], acme["bot_id"]) == ("T0ACME", "UACMEBOT", "BACME")
    assert acme["url"] == "https://acmeco.slack.com/" and acme["is_enterprise_install"] is False
    assert "enterprise_id" not in acme
    org = await client(slack, token="xoxb-org").auth_test()
    assert (org["team_id"], org["enterprise_id"], org["is_enterprise_install"]) == (
        "E0GRID",
        "E0GRID",
        True,
    )
    assert org["url"] == "https://grid.enterprise.slack.com/"
    posted = await client(slack, token="xoxb-acme").chat_postMessage(channel="C1", text="hi")
    assert (posted["message"]["user"], posted["message"]["team"]) == ("UACMEBOT", "T0ACME")
    await client(slack).chat_postMessage(channel="C1", text="from the first workspace")
    assert slack.tokens_used("chat.postMessage") == ["xoxb-acme", "xoxb-test"]
    assert slack.tokens_used() == ["xoxb-acme", "xoxb-org", "xoxb-acme", "xoxb-test"]
    assert slack.calls_to("auth.test")[1]["token"] == "xoxb-org"
    with pytest.raises(SlackApiError) as info:
        await client(slack, token="xoxb-unknown").auth_test()
    assert info.value.response["error"] == "invalid_auth"
    assert slack.calls[-1]["token"] == "xoxb-unknown"  # recorded, refused
    slack.reset(directory=True)
    assert {i.token for i in slack.installations()} == {"xoxb-test", "xoxb-acme", "xoxb-org"}


async def test_oauth_v2_access_exchanges_a_scripted_code_once(slack: SlackApiDouble) -> None:
    slack.script_oauth("code-1", WORKSPACE, installer="U0ADMIN", redirect_uri="https://a/r")
    web = client(slack, token=None)
    with pytest.raises(SlackApiError) as info:  # the token does not work before the install
        await client(slack, token="xoxb-acme").auth_test()
    response = await web.oauth_v2_access(
        client_id="1111.2222",
        client_secret="test-client-secret",
        code="code-1",
        redirect_uri="https://a/r",
    )
    assert response.data == {
        "ok": True,
        "app_id": "A1",
        "authed_user": {"id": "U0ADMIN"},
        "scope": "chat:write",
        "token_type": "bot",
        "access_token": "xoxb-acme",
        "bot_user_id": "UACMEBOT",
        "team": {"id": "T0ACME", "name": "Acme Co"},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    call = slack.calls_to("oauth.v2.access")[0]
    assert call["headers"]["authorization"].startswith("Basic ")  # how slack_sdk sends it
    assert call["token"] is None and "client_secret" not in call["args"]
    assert (await client(slack, token="xoxb-acme").auth_test())["team_id"] == "T0ACME"
    with pytest.raises(SlackApiError) as info:  # a code works once
        await web.oauth_v2_access(
            client_id="1111.2222", client_secret="test-client-secret", code="code-1"
        )
    assert info.value.response["error"] == "invalid_code"


async def test_oauth_v2_access_for_an_org_wide_install(slack: SlackApiDouble) -> None:
    slack.script_oauth("code-org", ORG)
    response = await client(slack, token=None).oauth_v2_access(
        client_id="1111.2222", client_secret="test-client-secret", code="code-org"
    )
    assert response["team"] is None
    assert response["enterprise"] == {"id": "E0GRID", "name": "Grid"}
    assert response["is_enterprise_install"] is True
    assert response["access_token"] == "xoxb-org" and response["bot_user_id"] == "WGRIDBOT"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            {"client_id": "9.9", "client_secret": "test-client-secret", "code": "c"},
            "invalid_client_id",
        ),
        ({"client_id": "1111.2222", "client_secret": "wrong", "code": "c"}, "bad_client_secret"),
        (
            {"client_id": "1111.2222", "client_secret": "test-client-secret", "code": "x"},
            "invalid_code",
        ),
        (
            {
                "client_id": "1111.2222",
                "client_secret": "test-client-secret",
                "code": "c",
                "redirect_uri": "https://elsewhere/",
            },
            "bad_redirect_uri",
        ),
    ],
)
def test_oauth_v2_access_errors_with_form_credentials(
    slack: SlackApiDouble, args: dict[str, str], error: str
) -> None:
    slack.script_oauth("c", WORKSPACE, redirect_uri="https://a/r")
    body = urllib.parse.urlencode(args).encode()
    with urllib.request.urlopen(slack.url + "oauth.v2.access", data=body, timeout=5) as resp:
        assert json.loads(resp.read()) == {"ok": False, "error": error}
    assert "xoxb-acme" not in {i.token for i in slack.installations()}


def test_oauth_v2_access_with_form_credentials_and_a_scripted_failure(
    slack: SlackApiDouble,
) -> None:
    slack.script_oauth("c", WORKSPACE)
    slack.fail("oauth.v2.access", "error:invalid_grant_type")
    form = {"client_id": "1111.2222", "client_secret": "test-client-secret", "code": "c"}
    body = urllib.parse.urlencode(form).encode()
    for expected in ({"ok": False, "error": "invalid_grant_type"}, None):
        with urllib.request.urlopen(slack.url + "oauth.v2.access", data=body, timeout=5) as resp:
            answer = json.loads(resp.read())
        if expected is not None:
            assert answer == expected
    assert answer["ok"] is True and answer["access_token"] == "xoxb-acme"


def test_org_wide_event_payload_and_block_action() -> None:
    envelope = event_payload(
        app_mention("<@WGRIDBOT> hi", user="W1", channel="C1", ts="1.0"),
        event_id="Ev9",
        team_id="T0WS1",
        enterprise_id="E0GRID",
        bot_user_id="WGRIDBOT",
        is_enterprise_install=True,
        is_ext_shared_channel=True,
    )
    assert envelope["team_id"] == "T0WS1" and envelope["enterprise_id"] == "E0GRID"
    assert envelope["authorizations"][0]["is_enterprise_install"] is True
    assert envelope["is_ext_shared_channel"] is True
    body = block_action(
        "x",
        "v",
        user="W1",
        channel="C1",
        message_ts="1.0",
        enterprise_id="E0GRID",
        is_enterprise_install=True,
    )
    payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
    assert payload["enterprise"] == {"id": "E0GRID"} and payload["is_enterprise_install"] is True


async def test_streaming_through_slack_sdks_helper(slack: SlackApiDouble) -> None:
    web = client(slack)
    stream = await web.chat_stream(
        channel="C1",
        thread_ts="1.1",
        recipient_user_id="U1",
        recipient_team_id="T0HARBOR1",
        buffer_size=1,
    )
    await stream.append(markdown_text="Hello")
    await stream.append(markdown_text=" world")
    await stream.stop(blocks=BLOCKS)
    start, append, stop = (
        slack.calls_to(m)[0] for m in ("chat.startStream", "chat.appendStream", "chat.stopStream")
    )
    # slack_sdk 3.48 sends the text as markdown_text chunks, in JSON bodies.
    assert start["args"]["chunks"] == [{"type": "markdown_text", "text": "Hello"}]
    assert start["headers"]["content-type"].startswith("application/json")
    assert append["args"]["ts"] == stream.ts and stop["args"]["blocks"] == BLOCKS
    assert stop["args"]["chunks"] == []  # nothing left in the helper's buffer
    [streamed] = slack.streams()
    assert (streamed["markdown"], streamed["pieces"]) == ("Hello world", ["Hello", " world"])
    assert not streamed["streaming"] and streamed["recipient_user_id"] == "U1"
    [message] = slack.messages()
    assert (message["text"], message["blocks"], message["thread_ts"]) == (
        "Hello world",
        BLOCKS,
        "1.1",
    )
    with pytest.raises(SlackApiError) as info:
        await web.chat_appendStream(channel="C1", ts=stream.ts, markdown_text="late")
    assert info.value.response["error"] == "message_not_in_streaming_state"
    # A stream is replaced like any message; and deleted.
    await web.chat_update(channel="C1", ts=stream.ts, text="final")
    assert slack.messages()[0]["text"] == "final"
    await web.chat_delete(channel="C1", ts=stream.ts)
    assert slack.messages() == []
    with pytest.raises(SlackApiError) as info:
        await web.chat_delete(channel="C1", ts=stream.ts)
    assert info.value.response["error"] == "message_not_found"


async def test_stream_refusals(slack: SlackApiDouble) -> None:
    web = client(slack)
    with pytest.raises(SlackApiError) as info:  # in a channel, Slack needs the recipient
        await web.chat_startStream(channel="C1", thread_ts="1.1", markdown_text="x")
    assert info.value.response["error"] == "invalid_arguments"
    assert (await web.chat_startStream(channel="D1", thread_ts="1.1", markdown_text="x"))["ok"]
    slack.fail("chat.startStream", "error:feature_not_enabled")
    with pytest.raises(SlackApiError) as info:
        await web.chat_startStream(channel="D1", thread_ts="1.2", markdown_text="x")
    assert info.value.response["error"] == "feature_not_enabled"
    with pytest.raises(SlackApiError) as info:
        await web.chat_stopStream(channel="D1", ts="9.9")
    assert info.value.response["error"] == "message_not_found"


async def test_assistant_statuses_and_suggested_prompts(slack: SlackApiDouble) -> None:
    web = client(slack)
    await web.assistant_threads_setStatus(channel_id="C1", thread_ts="1.1", status="is searching…")
    await web.chat_postMessage(channel="C1", thread_ts="1.2", text="another thread")
    assert slack.statuses("C1", "1.1") == ["is searching…"]
    await web.chat_postMessage(channel="C1", thread_ts="1.1", text="the answer")
    assert slack.statuses("C1", "1.1") == ["is searching…", ""]  # the bot's reply clears it
    prompts = [{"title": "Wi-Fi", "message": "How long does a guest pass last?"}]
    await web.assistant_threads_setSuggestedPrompts(
        channel_id="D1", thread_ts="1.1", title="Try", prompts=prompts
    )
    assert slack.suggested_prompts() == [
        {"channel_id": "D1", "thread_ts": "1.1", "title": "Try", "prompts": prompts}
    ]
    for bad in ([], prompts * 5, [{"title": "no message"}]):
        with pytest.raises(SlackApiError) as info:
            await web.assistant_threads_setSuggestedPrompts(channel_id="D1", prompts=bad)
        assert info.value.response["error"] == "invalid_arguments"
