"""The answer flow without a model tier: extractive answers, audience-safe permissions,
refusals, retrieval outage and traces, on the ingested demo corpus (real model, Chroma,
SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from bot.settings import Settings
from bot.wiring import Services, build_services
from core.answering.types import Asker, Audience, Mode, Question

PRIYA = "priya.raman@harborlight.example"  # group:hr
JORDAN = "jordan.kim@harborlight.example"  # engineering
CEO = "ceo@harborlight.example"  # executives, named on the compensation bands
SALARY_FIGURES = ("$72,000", "$90,000", "$108,000", "$92,000", "$115,000", "$138,000")


@pytest.fixture
async def demo(demo_settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(demo_settings)
    yield services
    await services.close()


def ask(text: str, email: str, audience: str = "dm") -> Question:
    return Question(text=text, asker=Asker(email=email), audience=Audience.parse(audience))


def sources(answer) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.source for c in answer.citations}


async def test_no_model_configured_answers_extractively(demo: Services) -> None:
    answer = await demo.answers.answer(
        ask("What portal address do I enter in GlobalProtect?", JORDAN)
    )
    assert answer.mode == Mode.ANSWER
    assert answer.tier == "extractive"
    assert answer.text.startswith("Quoted passages from the sources")
    assert "it/vpn-setup.md" in sources(answer)
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer.text
    assert [n.code for n in answer.notices] == ["extractive_only"]
    assert answer.cost_usd == 0


async def test_hr_user_in_public_channel_gets_no_hr_content(demo: Services) -> None:
    question = "What is the salary range for an L3 engineer in the Portland area?"
    private = await demo.answers.answer(ask(question, PRIYA, "dm"))
    assert "hr/compensation-bands.md" in sources(private)
    assert "private_answer_available" not in [n.code for n in private.notices]

    shared = await demo.answers.answer(ask(question, PRIYA, "public"))
    assert not any(s.startswith("hr/") for s in sources(shared))
    assert not any(figure in shared.text for figure in SALARY_FIGURES)
    assert "private_answer_available" in [n.code for n in shared.notices]
    assert shared.principals == ["public"]


async def test_members_audience_needs_every_member_to_read(demo: Services) -> None:
    question = "What is the salary range for an L3 engineer in the Portland area?"
    # Priya reads it through group:hr and the CEO by name: both may, so it may be used.
    both = await demo.answers.answer(ask(question, PRIYA, f"members:{PRIYA},{CEO}"))
    assert "hr/compensation-bands.md" in sources(both)
    # Add Jordan, who may not: the shared answer must not use it.
    three = await demo.answers.answer(ask(question, PRIYA, f"members:{PRIYA},{CEO},{JORDAN}"))
    assert "hr/compensation-bands.md" not in sources(three)
    assert not any(figure in three.text for figure in SALARY_FIGURES)
    assert "private_answer_available" in [n.code for n in three.notices]


async def test_unknown_asker_gets_public_documents_only(demo: Services) -> None:
    answer = await demo.answers.answer(ask("salary range for an L3 engineer", "who@else.io"))
    assert not any(s.startswith(("hr/", "finance/")) for s in sources(answer))
    assert answer.principals == ["public"]


async def test_empty_and_oversized_questions_are_refused(demo: Services) -> None:
    empty = await demo.answers.answer(ask("   ", JORDAN))
    assert empty.mode == Mode.REFUSED and "empty" in empty.text
    huge = await demo.answers.answer(ask("why " * 2000, JORDAN))
    assert huge.mode == Mode.REFUSED and "too long" in huge.text
    assert huge.citations == []


async def test_retrieval_outage_hands_off_with_a_notice(demo: Services) -> None:
    demo.index._client.delete_collection(demo.settings.chroma_collection)  # the index is gone
    answer = await demo.answers.answer(ask("How do I reset my password?", JORDAN))
    assert answer.mode == Mode.HANDOFF
    assert [n.code for n in answer.notices] == ["retrieval_unavailable"]
    assert answer.ticket is not None and answer.ticket["id"] in answer.text
    assert answer.request_id


async def test_every_request_has_a_trace(demo: Services) -> None:
    answer = await demo.answers.answer(
        ask("How long does a guest Wi-Fi pass last? call me at 503-555-0199", JORDAN, "public")
    )
    assert await demo.traces.flush()
    trace = await demo.traces.get(answer.request_id)
    assert trace is not None
    assert trace["mode"] == "answer"
    assert trace["audience"] == "public"
    assert trace["asker"] == JORDAN
    assert "503-555-0199" not in trace["question"] and "[phone]" in trace["question"]
    assert set(trace["stages"]) >= {"policy", "permissions", "retrieval", "private_check"}
    hits = trace["stages"]["retrieval"]["hits"]
    assert hits and {"chunk_id", "score"} <= set(hits[0])
    assert trace["stages"]["permissions"]["effective_principals"] == ["public"]
    assert trace["citations"] == [c.chunk_id for c in answer.citations]


async def test_trace_is_written_after_the_database_was_briefly_unavailable(
    demo: Services,
) -> None:
    async with demo.engine.begin() as conn:  # the traces table disappears for a moment
        await conn.execute(text("ALTER TABLE traces RENAME TO traces_away"))
    answer = await demo.answers.answer(ask("How do I reset my Okta password?", JORDAN))
    assert answer.mode == Mode.ANSWER  # the answer did not wait for or fail on the trace
    assert not await demo.traces.flush(timeout_s=0.5)
    assert demo.traces.pending == 1
    async with demo.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE traces_away RENAME TO traces"))
    assert await demo.traces.flush(timeout_s=10)
    assert (await demo.traces.get(answer.request_id))["request_id"] == answer.request_id


async def test_traces_left_at_shutdown_are_spilled_and_written_by_the_next_process(
    demo_settings: Settings,
) -> None:
    first = await build_services(demo_settings)
    async with first.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE traces RENAME TO traces_away"))
    answer = await first.answers.answer(ask("guest wifi", JORDAN))
    await first.traces.close(timeout_s=0.3)
    async with first.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE traces_away RENAME TO traces"))
    await first.engine.dispose()
    assert (demo_settings.data_dir / "traces-spill.jsonl").exists()

    second = await build_services(demo_settings)
    try:
        assert await second.traces.flush()
        assert (await second.traces.get(answer.request_id)) is not None
        assert not (demo_settings.data_dir / "traces-spill.jsonl").exists()
    finally:
        await second.close()
