"""Two `answerdesk serve` replicas on PostgreSQL and a Chroma server, Slack events and their
retries spread over both, and one replica SIGKILLed mid-answer: every event is answered
exactly once (the dead replica's claim runs out and the other replica takes the event over,
finishing in the working message the dead one had posted), ingestion through one replica is
visible on the other, and an answer cached by one is served by the other."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.faults import (
    BOT_TOKEN,
    QUESTIONS,
    SECRET,
    ChromaProcess,
    Served,
    Workspace,
    admin,
    config_file,
    request_id,
    wait_until,
    write_corpus,
)
from tests.support.model_server import ModelServer
from tests.support.slack_api import SlackApiDouble

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

TOKEN = "replica-admin-token"
LEASE_S = 2


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token=BOT_TOKEN) as double:
        double.add_channel("C0GENERAL", kind="public", members=["U0ASKER01"])
        yield double


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


def test_a_replica_killed_mid_answer_leaves_every_event_answered_once(
    tmp_path: Path, postgres_url: str, slack: SlackApiDouble, model: ModelServer
) -> None:
    chroma = ChromaProcess(tmp_path / "chroma")
    chroma.start()
    config = config_file(
        tmp_path / "answerdesk.yaml",
        {
            "slack": {"api_base_url": slack.url, "post_interval_s": 0},
            "models": {
                "deadline_s": 60,
                "tiers": [
                    {
                        "name": "fast",
                        "model": "openai/fast",
                        "api_base": model.url,
                        "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
                        "timeout_s": 60,
                    }
                ],
            },
            "events": {"lease_s": LEASE_S, "sweep_s": 0.3},
        },
    )
    env = {
        "ANSWERDESK_CONFIG": str(config),
        "ANSWERDESK_DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": postgres_url,
        "CHROMA_URL": chroma.url,
        "ANSWERDESK_ADMIN_TOKEN": TOKEN,
        "ANSWERDESK_TEST_MODEL_KEY": "sk-test",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
    }
    first = write_corpus(tmp_path / "corpus", ("guest-wifi.md", "parking.md", "lockers.md"))
    later = write_corpus(tmp_path / "later", ("kayak-club.md",))
    one, two = Served(env, tmp_path / "one.log"), Served(env, tmp_path / "two.log")
    try:
        one.ready(), two.ready()
        ingested = admin(one.url, "ingest", {"paths": [str(first)]}, TOKEN)["result"]
        assert ingested["added"] == 3, ingested
        people = Workspace(slack)
        replicas = (one.url, two.url)

        # Events and their retries land on both replicas: each is answered once.
        threads = []
        for n, name in enumerate(("guest-wifi.md", "parking.md", "lockers.md")):
            ts, payload = people.question(QUESTIONS[name])
            assert people.send(replicas[n % 2], payload) == 200
            assert people.send(replicas[(n + 1) % 2], payload, retry=1) == 200
            threads.append(ts)
        for ts in threads:
            people.answer(ts)
        asked = len(model.requests_for("fast"))

        # The cache is shared: the same question through the other replica is a hit.
        cached = people.ask(two.url, QUESTIONS["guest-wifi.md"])
        hit = people.answer(cached)
        assert "24 hours" in str(hit)
        assert len(model.requests_for("fast")) == asked
        status = wait_until(lambda: _cache_status(postgres_url, request_id(hit)), "its trace")
        assert status == "hit"

        # Ingestion through one replica is searched by the other.
        added = admin(one.url, "ingest", {"paths": [str(later)]}, TOKEN)["result"]
        assert added["added"] == 1, added
        kayak = people.ask(two.url, QUESTIONS["kayak-club.md"])
        assert "Thursday" in str(people.answer(kayak))

        # One replica dies mid-answer (its model call hangs), a retry reaches the other.
        asked = len(model.requests_for("fast"))
        model.script("fast", "hang:120")
        ts, payload = people.question(QUESTIONS["parking.md"].replace("much", "much, please,"))
        assert people.send(one.url, payload) == 200
        wait_until(lambda: len(model.requests_for("fast")) > asked, "the model is asked")
        working = wait_until(lambda: people.replies(ts), "the working message")
        one.kill()
        assert people.send(two.url, payload, retry=1) == 200
        answer = people.answer(ts, seconds=60)
        assert "Pier garage" in str(answer)
        assert request_id(answer)
        # The answer took over the dead replica's working message (streamed answers
        # replace it): no second working message, the user sees one reply.
        assert len(people.replies(ts)) == 1
        posts = [c for c in slack.calls_to("chat.postMessage") if c["args"]["thread_ts"] == ts]
        assert [c["response"]["ts"] for c in posts] == [working[0]["ts"]]
        assert people.send(two.url, payload, retry=2) == 200  # a late retry: ignored
        # Every event's claim is completed (nothing will be taken over again), the killed
        # one after a second attempt; every thread has exactly one reply.
        claims = wait_until(lambda: _all_completed(postgres_url, 6), "every claim completed")
        assert sorted(claims.values()) == [1, 1, 1, 1, 1, 2], claims
        for thread in [*threads, cached, kayak, ts]:
            assert len(people.replies(thread)) == 1, people.replies(thread)
    finally:
        for served in (one, two):
            served.stop()
        chroma.kill()


def _all_completed(url: str, expected: int) -> dict[str, int] | None:
    """The Slack event claims' attempts once `expected` of them are all completed."""

    async def read() -> list:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return await conn.fetch(
                "SELECT claim_key, attempts, completed_at FROM conversation_claims "
                "WHERE claim_key LIKE 'slack:event:%'"
            )
        finally:
            await conn.close()

    rows = asyncio.run(read())
    if len(rows) != expected or any(row["completed_at"] is None for row in rows):
        return None
    return {row["claim_key"]: row["attempts"] for row in rows}


def _cache_status(url: str, rid: str | None) -> str | None:
    """The cache decision in an answer's stored trace (None until it is stored)."""

    async def read() -> str | None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            data = await conn.fetchval("SELECT data FROM traces WHERE request_id = $1", rid)
        finally:
            await conn.close()
        return json.loads(data)["cache"]["status"] if data else None

    return asyncio.run(read())
