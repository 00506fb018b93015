"""Fault injection: `answerdesk serve` on its own PostgreSQL and a Chroma server, with the
model provider, Slack's Web API and the help desk as local servers, each broken on purpose
while people ask in Slack (signed events over HTTP). Faults are real: servers stopped,
killed and restarted, or answering 429/500, hanging or cutting a stream.

Every scenario asserts a reply for every question (the right notice when something is
down), no duplicates, and nothing lost: traces, votes and tickets are counted at the end
against what was sent. One deployment serves the module; each scenario leaves it healthy."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.support.faults import (
    BOT_TOKEN,
    QUESTIONS,
    SECRET,
    ChromaProcess,
    PrivatePostgres,
    Served,
    Workspace,
    admin,
    click,
    config_file,
    get,
    notice_codes,
    request_id,
    wait_until,
    write_corpus,
)
from tests.support.model_server import ModelServer
from tests.support.slack_api import SlackApiDouble
from tests.support.ticket_systems import WebhookReceiver

pytestmark = pytest.mark.faults

TOKEN = "faults-admin-token"
HOOK_SECRET = "faults-webhook-secret"
TIMEOUT_S = 1.0  # the model tier's timeout
DEADLINE_S = 6.0
COOLDOWN_S = 3.0  # the breaker's: outlasts three questions answered without the model
MODEL_CODES = ("model_unavailable", "model_ratelimited", "retrieval_unavailable")
VOTERS = ("U0VOTER001", "U0VOTER002")
TICKET_NEWS = "Your request is now ticket"  # posted once the help desk has it


@dataclass
class Deployment:
    postgres: PrivatePostgres
    chroma: ChromaProcess
    slack: SlackApiDouble
    model: ModelServer
    desk: WebhookReceiver
    service: Served
    people: Workspace
    sent: list[str]  # threads asked in, in order

    def ask(self, text: str) -> str:
        thread = self.people.ask(self.service.url, text)
        self.sent.append(thread)
        return thread

    def answer(self, thread: str) -> dict:
        return self.people.answer(thread, seconds=90)

    def rows(self, sql: str) -> list[Any]:
        async def fetch() -> list[Any]:
            url = self.postgres.url.replace("postgresql+asyncpg://", "postgresql://")
            conn = await asyncpg.connect(url)
            try:
                return list(await conn.fetch(sql))
            finally:
                await conn.close()

        return asyncio.run(fetch())

    def assert_nothing_lost(self) -> None:
        """Every question so far has one reply, finished, and its trace in the database;
        every answer message is in the thread it belongs to, once."""
        answers = {}
        for thread in self.sent:
            # One answer, then at most what a ticket adds: the notice after "talk to a
            # human" and the ticket's number once the help desk has it, each once.
            first, *rest = self.people.replies(thread)
            rid = request_id(first)
            assert rid, first
            assert all("ticket" in m["text"] for m in rest), (thread, rest)
            assert len({m["text"] for m in rest}) == len(rest) <= 2, (thread, rest)
            answers[thread] = rid
        assert len(set(answers.values())) == len(answers)  # no answer shown twice

        def traced() -> bool:
            found = {r["request_id"] for r in self.rows("SELECT request_id FROM traces")}
            return set(answers.values()) <= found

        wait_until(traced, "every answer's trace is stored", 60)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("faults")
    postgres = PrivatePostgres()
    chroma = ChromaProcess(tmp / "chroma")
    with (
        SlackApiDouble(bot_token=BOT_TOKEN) as slack,
        ModelServer() as model,
        WebhookReceiver(secret=HOOK_SECRET) as desk,
    ):
        slack.add_channel("C0GENERAL", kind="public", members=["U0ASKER01", *VOTERS])
        postgres.start()
        chroma.start()
        config = config_file(
            tmp / "answerdesk.yaml",
            {
                "slack": {"api_base_url": slack.url, "post_interval_s": 0},
                "models": {
                    "deadline_s": DEADLINE_S,
                    "breaker": {"failure_threshold": 2, "cooldown_s": COOLDOWN_S},
                    "tiers": [
                        {
                            "name": "fast",
                            "model": "openai/fast",
                            "api_base": model.url,
                            "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
                            "timeout_s": TIMEOUT_S,
                        }
                    ],
                },
                "handoff": {
                    "provider": "webhook",
                    "webhook": {"url": f"{desk.url}/tickets"},
                    "delivery": {
                        "backoff_s": 0.3,
                        "max_backoff_s": 1,
                        "poll_s": 0.3,
                        "inline_timeout_s": 1,
                        "timeout_s": 2,
                    },
                },
                "events": {"lease_s": 3, "sweep_s": 0.5},
            },
        )
        env = {
            "ANSWERDESK_CONFIG": str(config),
            "ANSWERDESK_DATA_DIR": str(tmp / "var"),
            "DATABASE_URL": postgres.url,
            "CHROMA_URL": chroma.url,
            "ANSWERDESK_ADMIN_TOKEN": TOKEN,
            "ANSWERDESK_TEST_MODEL_KEY": "sk-test",
            "ANSWERDESK_WEBHOOK_SECRET": HOOK_SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
        }
        service = Served(env, tmp / "serve.log").ready()
        try:
            report = admin(service.url, "ingest", {"paths": [str(write_corpus(tmp / "c"))]}, TOKEN)
            assert report["result"]["added"] == len(QUESTIONS), report
            yield Deployment(postgres, chroma, slack, model, desk, service, Workspace(slack), [])
            assert service.alive(), service.log_tail()
        finally:
            service.stop()
            chroma.kill()
            postgres.close()


def _codes(message: dict) -> set[str]:
    return notice_codes(message, MODEL_CODES)


def _model_calls(d: Deployment) -> int:
    return len(d.model.requests_for("fast"))


def _trace(d: Deployment, answer: dict) -> dict:
    def stored() -> list[Any]:
        return d.rows(f"SELECT data FROM traces WHERE request_id = '{request_id(answer)}'")

    return json.loads(wait_until(stored, "the answer's trace")[0]["data"])


def _outcomes(d: Deployment, answer: dict) -> list[str]:
    """The trace's model calls for an answer: what each attempt came to."""
    return [call["outcome"] for call in _trace(d, answer)["model_calls"]]


@pytest.mark.parametrize(
    ("fault", "code", "skipped"),
    [
        ("429:30", "model_ratelimited", "skipped: rate limited"),  # Retry-After past the deadline
        ("500", "model_unavailable", "skipped: circuit open"),
        ("hang:30", "model_unavailable", "skipped: circuit open"),  # past the tier's timeout
        ("cut", "model_unavailable", "skipped: circuit open"),  # the stream ends mid-answer
        ("refused", "model_unavailable", "skipped: circuit open"),  # nothing listens
    ],
)
def test_model_faults_answer_with_a_notice_trip_the_breaker_and_recover(
    deployment: Deployment, fault: str, code: str, skipped: str
) -> None:
    d = deployment
    if fault == "refused":
        d.model.stop()
    else:
        d.model.set_default("fast", fault)
    try:
        # One question after another, as a busy channel asks them.
        answers = [d.answer(d.ask(q)) for q in list(QUESTIONS.values())[:3]]
        for answer in answers:
            assert code in _codes(answer), (fault, answer)
            assert "[1]" in json.dumps(answer)  # quoted passages with their citations
        # The breaker stops wasting time: once it opened (two failures, or the provider's
        # Retry-After), the next question did not wait on the model at all.
        assert _outcomes(d, answers[-1]) == [skipped], _outcomes(d, answers[-1])
    finally:
        if fault == "refused":
            d.model.start()
        d.model.reset()

    # Recovery needs nobody: once the cooldown is over, questions are answered by the
    # model again (the cache is emptied first, so the answer cannot come from it).
    admin(d.service.url, "cache", {"command": "clear"}, TOKEN)

    def recovered() -> bool:
        answer = d.answer(d.ask(QUESTIONS["bikes.md"]))
        return not _codes(answer) and _outcomes(d, answer) == ["ok"]

    wait_until(recovered, "answers come from the model again", 60)
    d.assert_nothing_lost()


def test_slack_web_api_429_storm_and_500s_post_every_answer_once(deployment: Deployment) -> None:
    d = deployment
    storm = {
        "chat.postMessage": ("429:0", "429:0", "500", "429:0"),
        "chat.startStream": ("429:0", "500"),
        "chat.stopStream": ("500", "429:0"),
    }
    failed_before = {method: _failed_calls(d, method) for method in storm}
    for method, failures in storm.items():
        d.slack.fail(method, *failures)
    threads = [d.ask(q) for q in list(QUESTIONS.values())[:4]]
    for thread in threads:
        assert request_id(d.answer(thread))
    d.assert_nothing_lost()
    for method, failures in storm.items():  # the storm did happen, every failure answered
        assert _failed_calls(d, method) - failed_before[method] == len(failures), method


def _failed_calls(d: Deployment, method: str) -> int:
    return sum(c["status"] >= 400 for c in d.slack.calls_to(method))


def test_ticket_system_down_queues_tickets_tells_the_user_and_delivers_later(
    deployment: Deployment,
) -> None:
    d = deployment
    before = len(d.desk.created)
    d.desk.down()
    try:
        threads = [d.ask("Can I talk to a human about my parking permit?")]
        threads.append(d.ask("Please open a ticket for my locker key."))
        for thread in threads:
            answer = d.answer(thread)
            assert "queued" in json.dumps(answer), answer
    finally:
        d.desk.up()
    wait_until(lambda: len(d.desk.created) == before + 2, "both tickets delivered", 60)
    # Each thread hears its ticket's number once the ticket is open.
    for thread in threads:
        wait_until(
            lambda t=thread: any(TICKET_NEWS in json.dumps(m) for m in d.people.replies(t)),
            "the ticket number in the thread",
            30,
        )
    d.assert_nothing_lost()
    keys = {r["key"] for r in d.rows("SELECT key FROM tickets WHERE key LIKE 'DESK-%'")}
    assert keys == {t["key"] for t in d.desk.created}


def test_chroma_killed_serves_safe_cache_hits_else_hands_off_and_recovers(
    deployment: Deployment,
) -> None:
    d = deployment
    question = QUESTIONS["kayak-club.md"]
    first = d.answer(d.ask(question))
    assert "Thursday" in json.dumps(first) and not _codes(first)
    tickets_before = len(d.desk.created)
    d.chroma.kill()
    try:
        again = d.answer(d.ask(question))  # the same question: served from the cache
        assert "Thursday" in json.dumps(again) and not _codes(again), again
        assert _trace(d, again)["cache"]["status"] == "hit"
        other = d.answer(d.ask(QUESTIONS["library.md"]))
        assert "retrieval_unavailable" in _codes(other), other
        assert "ticket" in json.dumps(other).lower() or "queued" in json.dumps(other)
    finally:
        d.chroma.start()

    def recovered() -> bool:
        answer = d.answer(d.ask(QUESTIONS["library.md"] + " Thanks!"))
        return not _codes(answer) and "three weeks" in json.dumps(answer)

    wait_until(recovered, "answers come from the documents again", 60)
    wait_until(lambda: len(d.desk.created) == tickets_before + 1, "the handoff's ticket", 60)
    d.assert_nothing_lost()


def test_postgres_restarted_mid_run_loses_nothing_and_answers_once(
    deployment: Deployment,
) -> None:
    d = deployment
    admin(d.service.url, "cache", {"command": "clear"}, TOKEN)  # answers come from the model
    voted = d.answer(d.ask(QUESTIONS["guest-wifi.md"]))
    d.model.set_pacing("fast", first_token_ms=1500)  # answers in flight across the restart
    asked = _model_calls(d)
    in_flight = [d.ask(q) for q in (QUESTIONS["parking.md"], QUESTIONS["lockers.md"])]
    wait_until(lambda: _model_calls(d) >= asked + 2, "answers in flight", 30)
    d.postgres.stop()
    try:
        # While the database is down: a question, two votes and a request for a person.
        during = d.ask(QUESTIONS["bikes.md"])
        for voter in VOTERS:
            assert click(d.people, d.service.url, "answerdesk_feedback_up", voted, voter) == 200
        human = click(d.people, d.service.url, "answerdesk_talk_to_human", voted, VOTERS[0])
        assert human == 200
        wait_until(lambda: get(f"{d.service.url}/readyz")[0] == 503, "the service sees the outage")
        # Down long enough for the answers in flight to come back from the model and find
        # no database to record them in.
        time.sleep(2.5)
        assert get(f"{d.service.url}/readyz")[0] == 503
    finally:
        d.postgres.start()
        d.model.set_pacing("fast")
    for thread in [*in_flight, during]:
        assert request_id(d.answer(thread))
    rid = request_id(voted)
    wait_until(
        lambda: len(d.rows(f"SELECT voter_id FROM feedback WHERE request_id = '{rid}'")) == 2,
        "both votes stored",
        60,
    )
    wait_until(
        lambda: any(t["body"]["ticket"]["request_id"] == rid for t in d.desk.created),
        "the ticket stored and delivered",
        60,
    )
    assert len(d.rows(f"SELECT id FROM tickets WHERE request_id = '{rid}'")) == 1
    d.assert_nothing_lost()
    assert d.service.alive(), d.service.log_tail()
