"""The permission-safe semantic cache on the demo corpus (real model, Chroma, SQLite)."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.wiring import Services, build_services
from core.acl import load_policy, policy_from_mapping
from core.answering.types import Asker, Audience, Mode, Question
from tests.conftest import DEMO

PRIYA = "priya.raman@harborlight.example"  # hr
JORDAN = "jordan.kim@harborlight.example"
CEO = "ceo@harborlight.example"


@pytest.fixture
async def demo(demo_settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(demo_settings)
    yield services
    await services.close()


def ask(text: str, email: str = JORDAN, audience: str = "dm") -> Question:
    return Question(text=text, asker=Asker(email=email), audience=Audience.parse(audience))


async def test_paraphrase_hits_and_records_the_original(demo: Services) -> None:
    first = await demo.answers.answer(ask("How long does a guest Wi-Fi pass last?"))
    assert first.cache["status"] == "miss"
    again = await demo.answers.answer(ask("How long does a guest wifi pass last?"))
    assert again.cache["status"] == "hit"
    assert again.cache["original_request_id"] == first.request_id
    assert again.text == first.text
    assert [c.chunk_id for c in again.citations] == [c.chunk_id for c in first.citations]
    assert again.trace["stages"]["cache"]["original_request_id"] == first.request_id
    assert "retrieval" not in again.trace["stages"]


async def test_near_miss_does_not_hit(demo: Services) -> None:
    await demo.answers.answer(ask("How many PTO days do I get after 3 years?"))
    other = await demo.answers.answer(ask("How many PTO days do I get after 10 years?"))
    assert other.cache["status"] == "miss"
    await demo.answers.answer(ask("What is the deductible on Harborlight Basic?"))
    plus = await demo.answers.answer(ask("What is the deductible on Harborlight Plus?"))
    assert plus.cache["status"] == "miss"


async def test_a_requester_who_may_not_read_a_source_never_gets_the_entry(
    demo: Services,
) -> None:
    question = "What is the salary range for an L3 engineer in the Portland area?"
    hr = await demo.answers.answer(ask(question, PRIYA))
    assert any(c.source.startswith("hr/") for c in hr.citations)
    assert hr.cache["status"] == "miss"
    outsider = await demo.answers.answer(ask(question, JORDAN))
    assert outsider.cache["status"] == "miss"
    assert "may not read" in outsider.cache["reason"]
    assert not any(c.source.startswith("hr/") for c in outsider.citations)
    ceo = await demo.answers.answer(ask(question, CEO))  # named on the document's ACL
    assert ceo.cache["status"] == "hit"


async def test_ttl_release_and_disabled(demo_settings: Settings) -> None:
    question = "What portal address do I enter in GlobalProtect?"
    short = demo_settings.model_copy(
        update={"cache": demo_settings.cache.model_copy(update={"ttl_s": 1})}
    )
    services = await build_services(short)
    try:
        await services.answers.answer(ask(question))
        time.sleep(1.2)
        expired = await services.answers.answer(ask(question))
        assert expired.cache["status"] == "miss" and "expired" in expired.cache["reason"]
    finally:
        await services.close()
    # Another release (here: another routing configuration) never serves old entries.
    other = demo_settings.model_copy(
        update={"retrieval": demo_settings.retrieval.model_copy(update={"top_k": 4})}
    )
    services = await build_services(other)
    try:
        answer = await services.answers.answer(ask(question))
        assert answer.cache["status"] == "miss" and "release" in answer.cache["reason"]
    finally:
        await services.close()
    off = demo_settings.model_copy(
        update={"cache": demo_settings.cache.model_copy(update={"enabled": False})}
    )
    services = await build_services(off)
    try:
        answer = await services.answers.answer(ask(question))
        assert answer.cache["status"] == "bypass"
    finally:
        await services.close()


async def test_reingest_and_acl_change_invalidate(demo: Services, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(DEMO / "corpus", corpus)
    policy = load_policy(DEMO / "acl.yaml")
    await demo.ingestor.ingest([corpus], policy)  # same documents, now under this root
    question = "How do I reset my Okta password?"
    await demo.answers.answer(ask(question))
    assert (await demo.answers.answer(ask(question))).cache["status"] == "hit"
    source = corpus / "it" / "password-reset.md"
    source.write_text(source.read_text() + "\n\nUpdated: resets now need a manager's approval.\n")
    await demo.ingestor.ingest([corpus], policy)
    changed = await demo.answers.answer(ask(question))
    assert changed.cache["status"] == "miss" and "changed" in changed.cache["reason"]
    assert (await demo.answers.answer(ask(question))).cache["status"] == "hit"
    # The document is restricted: the entry built from it must not be served any more.
    restricted = policy_from_mapping(
        {"default": ["public"], "rules": [{"match": "it/**", "allow": ["group:it"]}]}
    )
    await demo.ingestor.ingest([corpus], restricted)
    after = await demo.answers.answer(ask(question))
    assert after.cache["status"] == "miss"
    assert not any(c.source == "it/password-reset.md" for c in after.citations)


async def test_limited_and_degraded_answers_are_not_stored(demo: Services) -> None:
    question = "What is the salary range for an L3 engineer in the Portland area?"
    shared = await demo.answers.answer(ask(question, PRIYA, "public"))
    assert "private_answer_available" in [n.code for n in shared.notices]
    assert shared.trace["cache_store"].startswith("skipped")
    clarify = await demo.answers.answer(ask("banana spaceship"))
    assert clarify.mode == Mode.CLARIFY
    stats = await demo.cache_store.stats()
    assert stats["entries"] == 0


async def test_cache_cli_stats_and_clear(demo: Services) -> None:
    await demo.answers.answer(ask("How long does a guest Wi-Fi pass last?"))
    await demo.answers.answer(ask("How long does a guest wifi pass last?"))
    stats = await demo.cache_store.stats()
    assert stats["entries"] == 1 and stats["hits_served"] == 1
    assert await demo.cache_store.clear() == 1
    assert (await demo.cache_store.stats())["entries"] == 0
