"""Hostile input over real HTTP: one service (Slack, Teams, the webhook ticket loop-back and
the admin console all configured) on a loopback port, driven with an aiohttp client by
hypothesis. Whatever arrives — any bytes, headers, signatures, JSON shapes, sizes — the
answer is never a 5xx: a refusal is a 4xx with a JSON error (the console's form pages
answer a browser with the form and its error), nothing is written (every row of every
table compared), nothing is sent to Slack or Teams, and nothing is logged at error level
(a crash in the background shows only there).

Signed or authenticated requests of any shape must also come back below 500; those that
are accepted may do what they ask (claim an event, answer), so only the absence of errors
is checked for them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from adapters.tickets.signing import sign as sign_ticket_hook
from bot.settings import Settings
from tests.support.botframework import BotFrameworkDouble, member, message
from tests.support.console import csrf_of, login
from tests.support.fuzzing import (
    ServedApp,
    dict_with,
    error_log,
    header_text,
    is_json_error,
    json_values,
    request,
    rows_digest,
)
from tests.support.slack_api import (
    SlackApiDouble,
    app_mention,
    block_action,
    dm_message,
    event_payload,
    signed_headers,
)
from tests.support.ticket_systems import WebhookReceiver

pytestmark = pytest.mark.fuzz

SECRET = "fuzz-signing-secret"
HOOK_SECRET = "fuzz-hook-secret"
APP_ID = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
APP_PASSWORD = "fuzz-app-password"
TENANT = "6f1c2a9e-4b7d-4e3a-9c5f-2d8e1b0a7c43"
ADMIN, ADMIN_PASSWORD = "ops", "a long enough console password"
PRIYA = member("29:priya", "a4e2c9f1-0d5b-4c87-8e3a-6f1b2d9c0e58", None, "Priya Raman")
CHAT = "a:1fuzz-personal"
# Small limits, so the size properties cross them in a few kilobytes.
LIMITS = {"slack": 8192, "teams": 8192, "ticket_hooks": 4096, "console": 4096, "other": 1024}
ROUTES = {
    "slack": "/slack/events",
    "teams": "/api/messages",
    "ticket_hooks": "/hooks/tickets/webhook",
    "console": "/admin/try",
    "other": "/healthz",
}
FUZZ = settings(max_examples=40, deadline=None)


class Harness:
    def __init__(self, app: ServedApp, slack: SlackApiDouble, teams: BotFrameworkDouble) -> None:
        self.app, self.slack, self.teams = app, slack, teams
        self.database = app.settings.data_dir / "answerdesk.db"
        self.loop = asyncio.Runner()
        self.session = self.loop.run(self._session())
        self.csrf = ""
        self.errors: Callable[[], list[str]] = list

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), auto_decompress=False
        )

    def send(self, method: str, path: str, **kwargs: Any) -> tuple[int, str, str]:
        return self.loop.run(request(self.session, method, f"{self.app.url}{path}", **kwargs))

    def state(self) -> tuple[dict[str, str], int, int]:
        return rows_digest(self.database), len(self.slack.calls), len(self.teams.calls)

    def begin(self) -> tuple[dict[str, str], int, int]:
        """Before an example: the earlier one's background work done, what it logged
        forgotten; the state."""
        self.app.settle()
        self.errors()
        return self.state()

    def close(self) -> None:
        self.loop.run(self.session.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-fuzz",
        "SLACK_SIGNING_SECRET": SECRET,
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
        "MICROSOFT_APP_TENANT_ID": TENANT,
        "ANSWERDESK_WEBHOOK_SECRET": HOOK_SECRET,
        "ANSWERDESK_ADMIN_USER": ADMIN,
        "ANSWERDESK_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    tmp = tmp_path_factory.mktemp("fuzz-http")
    with (
        pytest.MonkeyPatch.context() as patch,
        SlackApiDouble(bot_token="xoxb-fuzz") as slack,
        BotFrameworkDouble(APP_ID, APP_PASSWORD) as teams,
        WebhookReceiver(secret=HOOK_SECRET) as desk,
    ):
        for name, value in env.items():
            patch.setenv(name, value)
        slack.add_user("U02PRAMAN7", "priya.raman@harborlight.example")
        slack.add_channel("D0PRIYA", kind="im", members=["U02PRAMAN7"])
        teams.add_roster(CHAT, [PRIYA])
        configured = Settings(
            data_dir=tmp / "var",
            slack={"api_base_url": slack.url, "post_interval_s": 0.01, "streaming": False},
            teams={"openid_metadata_url": teams.metadata_url, "token_url": teams.token_url},
            handoff={
                "provider": "webhook",
                # A ticket a fuzzed question asks for is delivered at once (no retries
                # changing rows while a later example runs).
                "webhook": {"url": f"{desk.url}/tickets"},
                "delivery": {"inline_timeout_s": 0.5, "poll_s": 0.2},
            },
            server={"body_limits": LIMITS},
        )
        app = ServedApp(configured).start()
        built = Harness(app, slack, teams)
        with error_log() as errors:
            built.errors = errors
            built.loop.run(_log_in(built))
            try:
                yield built
            finally:
                built.close()
                app.stop()


async def _log_in(harness: Harness) -> None:
    response = await login(harness.session, harness.app.url, ADMIN, ADMIN_PASSWORD)
    assert response.status == 302, response.status
    async with harness.session.get(f"{harness.app.url}/admin/try") as page:
        harness.csrf = csrf_of(await page.text())


def refused_cleanly(
    harness: Harness,
    before: tuple[dict[str, str], int, int],
    status: int,
    content_type: str,
    text: str,
    *,
    html_ok: bool = False,
) -> None:
    """A 4xx: a clear error, nothing stored or sent."""
    assert 400 <= status < 500, (status, text[:300])
    if not (html_ok and content_type == "text/html"):
        assert is_json_error(content_type, text), (status, content_type, text[:300])
    after = harness.state()
    changed = [t for t in after[0] if after[0][t] != before[0].get(t)]
    assert after == before, f"a refused request changed the stored state: {changed}, {after[1:]}"


def no_errors(harness: Harness) -> None:
    harness.app.settle()
    found = harness.errors()
    assert not found, found


# --- Slack ---------------------------------------------------------------------------------

SLACK_EVENTS = st.one_of(
    st.builds(
        app_mention,
        st.text(max_size=60),
        user=st.text(max_size=12),
        channel=st.text(max_size=12),
        ts=st.text(max_size=12),
    ),
    st.builds(
        dm_message,
        st.text(max_size=60),
        user=st.just("U02PRAMAN7"),
        channel=st.just("D0PRIYA"),
        ts=st.just("1700000000.000100"),
    ),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "assistant_thread_started",
                    "tokens_revoked",
                    "app_uninstalled",
                    "message",
                    "reaction_added",
                ]
            )
        },
        optional={
            "assistant_thread": json_values,
            "tokens": json_values,
            "user": json_values,
            "subtype": json_values,
            "channel_type": json_values,
        },
    ),
).flatmap(dict_with)
SLACK_ENVELOPES = st.builds(
    lambda ev, eid: event_payload(ev, event_id=eid), SLACK_EVENTS, st.text(max_size=16)
).flatmap(dict_with)
SLACK_INTERACTIONS = st.builds(
    lambda action, value, user: json.loads(
        __import__("urllib.parse").parse.parse_qs(
            block_action(action, value, user=user, channel="D0PRIYA", message_ts="1.2").decode()
        )["payload"][0]
    ),
    st.sampled_from(
        [
            "answerdesk_vote_up",
            "answerdesk_vote_down",
            "answerdesk_human",
            "answerdesk_private",
            "other",
        ]
    ),
    st.text(max_size=40),
    st.sampled_from(["U02PRAMAN7", "", "U0NOBODY"]),
).flatmap(dict_with)


def _form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


SLACK_BODIES = st.one_of(
    st.binary(max_size=300).map(lambda b: (b, "application/json")),
    json_values.map(lambda v: (json.dumps(v).encode(), "application/json")),
    SLACK_ENVELOPES.map(lambda v: (json.dumps(v).encode(), "application/json")),
    st.fixed_dictionaries({"type": st.just("url_verification"), "challenge": json_values}).map(
        lambda v: (json.dumps(v).encode(), "application/json")
    ),
    SLACK_INTERACTIONS.map(lambda v: (_form(v), "application/x-www-form-urlencoded")),
    json_values.map(lambda v: (_form(v), "application/x-www-form-urlencoded")),
    st.text(max_size=80).map(lambda t: (t.encode(), "application/x-www-form-urlencoded")),
)


@FUZZ
@given(
    body=SLACK_BODIES,
    forged=st.sampled_from(["none", "wrong-secret", "other-body", "stale", "future", "garbage"]),
    timestamp=header_text,
    signature=header_text,
)
def test_slack_requests_not_signed_by_slack_are_refused_and_change_nothing(
    harness: Harness, body: tuple[bytes, str], forged: str, timestamp: str, signature: str
) -> None:
    raw, content_type = body
    now = int(time.time())
    headers = {
        "none": {"Content-Type": content_type},
        "wrong-secret": signed_headers("not-the-secret", raw, content_type=content_type),
        "other-body": signed_headers(SECRET, raw + b" ", content_type=content_type),
        "stale": signed_headers(SECRET, raw, content_type=content_type, timestamp=now - 600),
        "future": signed_headers(SECRET, raw, content_type=content_type, timestamp=now + 600),
        "garbage": {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        },
    }[forged]
    before = harness.begin()
    status, kind, text = harness.send("POST", "/slack/events", data=raw, headers=headers)
    assert status == 401, (status, text)
    refused_cleanly(harness, before, status, kind, text)
    no_errors(harness)


@FUZZ
@given(body=SLACK_BODIES, retry=st.none() | header_text)
def test_slack_signed_bodies_of_any_shape_get_a_clear_answer(
    harness: Harness, body: tuple[bytes, str], retry: str | None
) -> None:
    raw, content_type = body
    headers = signed_headers(SECRET, raw, content_type=content_type)
    if retry is not None:
        headers["X-Slack-Retry-Num"] = retry
    before = harness.begin()
    status, kind, text = harness.send("POST", "/slack/events", data=raw, headers=headers)
    event(f"status {status}")
    assert status < 500, (status, text[:300])
    if status >= 400:
        refused_cleanly(harness, before, status, kind, text)
    no_errors(harness)


# --- Teams ---------------------------------------------------------------------------------


def _activity(text: str, activity_id: str) -> dict[str, Any]:
    return message(
        text,
        service_url="",
        conversation_id=CHAT,
        conversation_type="personal",
        user=PRIYA,
        tenant_id=TENANT,
        bot_id=f"28:{APP_ID}",
        activity_id=activity_id,
    )


ACTIVITIES = st.builds(_activity, st.text(max_size=60), st.text(max_size=12)).flatmap(dict_with)


@FUZZ
@given(
    activity=ACTIVITIES | json_values,
    forged=st.sampled_from(
        [
            "none",
            "garbage",
            "wrong-key",
            "wrong-audience",
            "expired",
            "wrong-issuer",
            "other-service",
        ]
    ),
    authorization=header_text,
)
def test_teams_activities_without_a_valid_bot_framework_token_are_refused(
    harness: Harness, activity: Any, forged: str, authorization: str
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    teams = harness.teams
    if isinstance(activity, dict):
        activity = {**activity, "serviceUrl": teams.service_url}
    token = {
        "none": None,
        "garbage": authorization,
        "wrong-key": "Bearer "
        + teams.sign(key=rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        "wrong-audience": "Bearer " + teams.sign(audience="someone-else"),
        "expired": "Bearer " + teams.sign(expires_in=-3600),
        "wrong-issuer": "Bearer " + teams.sign(issuer="https://evil.example"),
        "other-service": "Bearer " + teams.sign(service_url="https://elsewhere.example/"),
    }[forged]
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    before = harness.begin()
    status, kind, text = harness.send(
        "POST", "/api/messages", data=json.dumps(activity).encode(), headers=headers
    )
    assert status in (400, 401), (status, text[:300])
    refused_cleanly(harness, before, status, kind, text)
    no_errors(harness)


@FUZZ
@given(activity=ACTIVITIES | json_values | st.binary(max_size=200))
def test_teams_authenticated_activities_of_any_shape_get_a_clear_answer(
    harness: Harness, activity: Any
) -> None:
    teams = harness.teams
    if isinstance(activity, dict) and "serviceUrl" in activity:
        activity["serviceUrl"] = teams.service_url
    raw = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + teams.sign()}
    before = harness.begin()
    status, kind, text = harness.send("POST", "/api/messages", data=raw, headers=headers)
    event(f"status {status}")
    assert status < 500, (status, text[:300])
    if status >= 400:
        refused_cleanly(harness, before, status, kind, text)
    no_errors(harness)


# --- ticket loop-back ------------------------------------------------------------------------

HOOK_EVENTS = st.fixed_dictionaries(
    {
        "id": json_values,
        "ticket": json_values,
        "type": st.sampled_from(["comment", "status", "other"]) | json_values,
    },
    optional={
        "text": json_values,
        "status": json_values,
        "public": json_values,
        "author": json_values,
        "category": json_values,
    },
)


@FUZZ
@given(
    payload=HOOK_EVENTS | json_values,
    provider=st.sampled_from(["webhook", "jira", "zendesk", "servicenow"])
    | st.text(min_size=1, max_size=20).map(lambda t: quote(t, safe="")),
    signed=st.booleans(),
    junk=st.binary(max_size=100),
    headers=st.dictionaries(
        st.sampled_from(
            ["X-Answerdesk-Timestamp", "X-Answerdesk-Signature", "Authorization", "X-Hub-Signature"]
        ),
        header_text,
        max_size=3,
    ),
)
def test_ticket_hooks_refuse_what_is_not_signed_and_parse_what_is_without_crashing(
    harness: Harness,
    payload: Any,
    provider: str,
    signed: bool,
    junk: bytes,
    headers: dict[str, str],
) -> None:
    raw = json.dumps(payload).encode() if not junk or signed else junk
    sent = dict(headers)
    if signed:
        sent.update(sign_ticket_hook(HOOK_SECRET, raw))
    sent["Content-Type"] = "application/json"
    before = harness.begin()
    status, kind, text = harness.send("POST", f"/hooks/tickets/{provider}", data=raw, headers=sent)
    event(f"status {status}")
    assert status < 500, (status, text[:300])
    if not (signed and provider == "webhook"):
        assert status in (401, 404), (status, text)
    if status >= 400:
        refused_cleanly(harness, before, status, kind, text)
    else:
        assert json.loads(text)["ok"] is True
    no_errors(harness)


# --- the admin console -----------------------------------------------------------------------

FORM_FIELDS = st.dictionaries(
    st.sampled_from(
        ["csrf", "email", "audience", "question", "note", "message", "name", "password", "next"]
    )
    | st.text(max_size=8),
    st.text(max_size=60),
    max_size=5,
)
CONSOLE_POSTS = st.sampled_from(
    [
        "/admin/try",
        "/admin/tickets/{t}/resolve",
        "/admin/tickets/{t}/reply",
        "/admin/logout",
        "/admin/login",
    ]
)


@FUZZ
@given(
    path=CONSOLE_POSTS,
    ticket=st.text(min_size=1, max_size=12).map(lambda t: quote(t, safe=""))
    | st.sampled_from(["AD-1", "AD-999999"]),
    fields=FORM_FIELDS,
    csrf=st.sampled_from(["session", "none", "wrong"]),
    encoding=st.sampled_from(["form", "multipart", "raw", "json"]),
    raw=st.binary(max_size=200),
)
def test_console_forms_refuse_bad_input_and_write_nothing(
    harness: Harness,
    path: str,
    ticket: str,
    fields: dict[str, str],
    csrf: str,
    encoding: str,
    raw: bytes,
) -> None:
    form = dict(fields)
    if csrf == "session":
        form["csrf"] = harness.csrf
    elif csrf == "wrong":
        form["csrf"] = "x" + harness.csrf[1:]
    if path in ("/admin/try",) and csrf == "session":
        # A well-formed question is answered (and audited): keep this one refusable.
        form["audience"] = "nowhere:" + form.get("audience", "")
    if path == "/admin/logout":
        form.pop("csrf", None)  # logging out is what a valid token would do
    body, content_type = {
        "form": (urlencode(form).encode(), "application/x-www-form-urlencoded"),
        "multipart": (_multipart(form), "multipart/form-data; boundary=fuzzboundary"),
        "raw": (raw, "application/x-www-form-urlencoded"),
        "json": (json.dumps(form).encode(), "application/json"),
    }[encoding]
    before = harness.begin()
    status, kind, text = harness.send(
        "POST", path.format(t=ticket), data=body, headers={"Content-Type": content_type}
    )
    event(f"{path} {status}")
    assert status < 500, (status, text[:300])
    if path == "/admin/login":
        # Refused logins are counted (rate limiting) and audited by design: only the ones
        # refused before a password is checked are held to "nothing written".
        assert status in (400, 401, 403, 429), (status, text[:300])
        if status in (400, 403):
            refused_cleanly(harness, before, status, kind, text)
    else:
        refused_cleanly(harness, before, status, kind, text, html_ok=True)
    no_errors(harness)


def _multipart(form: dict[str, str]) -> bytes:
    parts = [
        f'--fuzzboundary\r\nContent-Disposition: form-data; name="{quote(k)}"\r\n\r\n{v}\r\n'
        for k, v in form.items()
    ]
    return ("".join(parts) + "--fuzzboundary--\r\n").encode()


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/admin",
            "/admin/traces",
            "/admin/tickets",
            "/admin/try",
            "/admin/audit",
            "/admin/launch",
            "/admin/traces/{t}",
            "/admin/login",
        ]
    ),
    query=st.dictionaries(
        st.sampled_from(
            [
                "range",
                "platform",
                "mode",
                "feedback",
                "tier",
                "q",
                "which",
                "page",
                "next",
                "done",
                "since",
            ]
        )
        | st.text(max_size=6),
        st.text(max_size=40),
        max_size=4,
    ),
    trace=st.text(min_size=1, max_size=20).map(lambda t: quote(t, safe="")),
)
def test_console_pages_with_any_query_answer_below_500_and_change_nothing(
    harness: Harness, path: str, query: dict[str, str], trace: str
) -> None:
    before = harness.begin()
    status, _kind, text = harness.send("GET", path.format(t=trace) + "?" + urlencode(query))
    event(f"{path} {status}")
    assert status < 500, (status, text[:300])
    assert harness.state() == before
    no_errors(harness)


# --- body size limits --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    route=st.sampled_from(sorted(ROUTES)),
    delta=st.integers(-64, 64) | st.integers(1, 30_000),
    chunked=st.booleans(),
)
def test_every_route_refuses_a_body_over_its_limit_with_413_json_before_reading_it(
    harness: Harness, route: str, delta: int, chunked: bool
) -> None:
    limit = LIMITS[route]
    size = max(0, limit + delta)
    raw = b"{" + b" " * max(0, size - 2) + b"}" if size >= 2 else b"{"[:size]
    headers = {"Content-Type": "application/json"}
    if route == "slack":
        headers = signed_headers(SECRET, raw)
    before = harness.begin()
    status, kind, text = harness.send(
        "POST" if route != "other" else "GET",
        ROUTES[route],
        data=raw,
        headers=headers,
        chunked=chunked,
    )
    event(f"{route} {'over' if size > limit else 'within'} {'chunked' if chunked else 'length'}")
    if size > limit:
        assert status == 413, (route, size, status, text[:200])
        assert is_json_error(kind, text)
        assert f"server.body_limits.{route}" in json.loads(text)["error"]
        assert harness.state() == before
    else:
        assert status != 413 and status < 500, (route, size, status, text[:200])
    no_errors(harness)


def test_the_readme_documents_the_default_body_limits() -> None:
    """README "Configuration" shows `server.body_limits` with the values the service uses."""
    import re

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("## Configuration")
    block = re.findall(
        r"```yaml\n(.*?)```", readme[start : readme.index("\n## ", start + 5)], re.S
    )[0]
    documented = yaml.safe_load(block)["server"]["body_limits"]
    assert documented == Settings().server.body_limits.model_dump()


# --- header bytes no client library sends ------------------------------------------------------


async def _raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, str]:
    """One request written byte for byte on a socket: (status, body text)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode(errors="replace")


@FUZZ
@given(
    target=st.sampled_from(
        [
            (b"POST /slack/events", b"X-Slack-Request-Timestamp", "1700000000"),
            (b"POST /slack/events", b"X-Slack-Signature", "v0=00"),
            (b"POST /hooks/tickets/webhook", b"X-Answerdesk-Signature", "v1=00"),
            (b"POST /hooks/tickets/webhook", b"X-Answerdesk-Timestamp", "1"),
            (b"POST /admin/run", b"Authorization", "Bearer x"),
            (b"GET /metrics", b"Authorization", "Bearer x"),
            (b"GET /admin", b"Cookie", "answerdesk_session=a.b"),
            (b"POST /api/messages", b"Authorization", "Bearer x"),
        ]
    ),
    # What HTTP allows in a header value (visible ASCII, space, tab, obs-text 0x80-0xFF),
    # mostly bytes that are not UTF-8. Control characters never reach the app: aiohttp's
    # parser answers them 400 itself.
    value=st.binary(min_size=1, max_size=40).map(
        lambda b: bytes(c for c in b if (c >= 0x20 and c != 0x7F) or c == 0x09) or b"\xff"
    ),
)
def test_header_values_that_are_not_utf8_are_refused_not_crashed_on(
    harness: Harness, target: tuple[bytes, bytes, str], value: bytes
) -> None:
    request_line, header, _example = target
    head = request_line + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += header + b": " + value + b"\r\n"
    fresh = str(int(time.time())).encode()  # so that the signature itself is compared
    if header == b"X-Slack-Signature":
        head += b"X-Slack-Request-Timestamp: " + fresh + b"\r\n"
    if header == b"X-Answerdesk-Signature":
        head += b"X-Answerdesk-Timestamp: " + fresh + b"\r\n"
    before = harness.begin()
    status, text = harness.loop.run(_raw(harness.app.port, head, b"{}"))
    event(f"{request_line.decode()} {status}")
    assert status < 500, (status, text[:300])
    if request_line != b"GET /admin":  # the console redirects to its login page
        assert 400 <= status < 500, (status, text[:300])
        assert harness.state() == before
    no_errors(harness)
