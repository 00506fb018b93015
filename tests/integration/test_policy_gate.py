"""Governance policies and the confidence gate, end to end on the demo corpus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.settings import Settings
from bot.wiring import Services, build_services
from core.answering.types import Asker, Audience, Mode, Question
from tests.support.model_server import ModelServer

JORDAN = "jordan.kim@harborlight.example"
TOPICS = [
    {
        "name": "legal-advice",
        "patterns": ["lawsuit", r"\bsue (?:my|the) (?:manager|company)\b"],
        "action": "refuse",
        "message": "I can't give legal advice. Please contact Legal at legal@harborlight.example.",
    },
    {
        "name": "harassment",
        "patterns": ["harassed", "harassment"],
        "action": "handoff",
        "message": "I'm sorry this happened. I've passed this to People Team, confidentially.",
    },
]


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


@pytest.fixture
async def demo(
    demo_settings: Settings, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Services]:
    server.reset()
    monkeypatch.setenv("TEST_MODEL_KEY", "k")
    tier = {
        "name": "fast",
        "model": "openai/fast",
        "api_base": server.url,
        "api_key_env": "TEST_MODEL_KEY",
    }
    settings = Settings(
        data_dir=demo_settings.data_dir,
        models={"tiers": [tier]},
        policy={"prohibited_topics": TOPICS},
    )
    services = await build_services(settings)
    yield services
    await services.close()


def ask(text: str, conversation: str | None = None, email: str = JORDAN) -> Question:
    return Question(
        text=text, asker=Asker(email=email), audience=Audience("dm"), conversation_id=conversation
    )


async def test_prohibited_topic_is_refused_before_anything_else(
    demo: Services, server: ModelServer
) -> None:
    answer = await demo.answers.answer(ask("Can I sue my manager over the schedule?"))
    assert answer.mode == Mode.REFUSED
    assert answer.text == TOPICS[0]["message"]
    assert answer.trace["stages"]["policy"]["topic_rule"] == "legal-advice"
    assert "retrieval" not in answer.trace["stages"]
    assert server.requests == []


async def test_handoff_topic_opens_a_ticket(demo: Services, server: ModelServer) -> None:
    answer = await demo.answers.answer(ask("I was harassed by a coworker, what do I do?", "c-1"))
    assert answer.mode == Mode.HANDOFF
    assert answer.ticket is not None and answer.ticket["provider"] == "builtin"
    assert answer.ticket["id"] in answer.text
    assert answer.to_dict()["ticket"]["id"] == answer.ticket["id"]
    queue = await demo.tickets.list()
    assert queue[0]["id"] == answer.ticket["id"]
    assert queue[0]["reason"] == "topic rule harassment"
    assert server.requests == []


async def test_pii_never_reaches_the_model_or_the_cache(
    demo: Services, server: ModelServer
) -> None:
    question = (
        "I'm jordan.kim@harborlight.example, phone 971-555-0123, card 4111 1111 1111 1111: "
        "how long does a guest Wi-Fi pass last?"
    )
    answer = await demo.answers.answer(ask(question))
    assert answer.mode == Mode.ANSWER and answer.tier == "fast"
    received = json.dumps(server.requests)
    for secret in ("jordan.kim@harborlight.example", "971-555-0123", "4111 1111 1111 1111"):
        assert secret not in received
    assert "[email]" in received and "[phone]" in received and "[card_number]" in received
    counts = answer.trace["stages"]["policy"]["pii_redacted"]
    assert counts == {"email": 1, "phone": 1, "card_number": 1}
    stats = await demo.cache_store.stats()
    assert stats["entries"] == 1
    cached = json.dumps(await demo.cache_store.load(list(await _entry_ids(demo))), default=str)
    assert "4111" not in cached and "971-555" not in cached


async def _entry_ids(services: Services) -> list[str]:
    return services.cache_store._collection.get(include=[])["ids"]


async def test_tools_are_off(demo: Services, server: ModelServer) -> None:
    answer = await demo.answers.answer(ask("What portal address do I enter in GlobalProtect?"))
    assert answer.trace["stages"]["policy"]["allow_tools"] is False
    body = server.requests_for("fast")[0]
    assert "tools" not in body and "functions" not in body and "tool_choice" not in body


async def test_weak_retrieval_clarifies_then_hands_off(demo: Services, server: ModelServer) -> None:
    first = await demo.answers.answer(ask("banana spaceship quantum", "c-2"))
    assert first.mode == Mode.CLARIFY
    assert first.text.count("?") == 1 and "covers" in first.text
    assert server.requests == []
    second = await demo.answers.answer(ask("zebra crossing moonlight", "c-2"))
    assert second.mode == Mode.HANDOFF
    assert second.ticket is not None
    assert second.trace["stages"]["gate"]["clarified_before"] is True


async def test_asking_for_a_human_hands_off(demo: Services) -> None:
    for text in ("Can I talk to a human please?", "agent please", "Please escalate this"):
        answer = await demo.answers.answer(ask(text))
        assert answer.mode == Mode.HANDOFF, text
        assert answer.ticket is not None


async def test_follow_up_is_rewritten_with_the_thread_topic(demo: Services) -> None:
    first = await demo.answers.answer(ask("What is the deductible on Harborlight Basic?", "c-3"))
    assert any(c.source == "benefits/health-plans.md" for c in first.citations)
    follow = await demo.answers.answer(ask("and for Plus?", "c-3"))
    assert follow.trace["stages"]["rewrite"]["rewritten"] is True
    hits = follow.trace["stages"]["retrieval"]["hits"]
    assert hits[0]["document_id"] == "benefits/health-plans.md"
    alone = await demo.answers.answer(ask("and for Plus?", "c-4"))
    assert alone.trace["stages"]["rewrite"]["rewritten"] is False


async def test_language_setting_reaches_the_prompt(
    demo_settings: Settings, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    monkeypatch.setenv("TEST_MODEL_KEY", "k")
    tier = {
        "name": "fast",
        "model": "openai/fast",
        "api_base": server.url,
        "api_key_env": "TEST_MODEL_KEY",
    }
    for language, expected in (("auto", None), ("de", "language with code 'de'")):
        services = await build_services(
            Settings(
                data_dir=demo_settings.data_dir,
                models={"tiers": [tier]},
                policy={"language": language},
                cache={"enabled": False},
            )
        )
        try:
            await services.answers.answer(ask("What portal address do I enter in GlobalProtect?"))
        finally:
            await services.close()
        user = server.requests_for("fast")[-1]["messages"][1]["content"]
        assert (expected in user) if expected else ("language with code" not in user)
    system = server.requests_for("fast")[-1]["messages"][0]["content"]
    assert "language of the question" in system
