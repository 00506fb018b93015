"""The most asked questions, as suggested prompts take them from the traces: on SQLite and
PostgreSQL, only questions that are safe to show anyone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.db.engine import create_engine, upgrade
from adapters.db.traces import BufferedTraceWriter, most_asked_questions


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'traces.db'}"
    return request.getfixturevalue("postgres_url")


async def test_most_asked_public_questions_only(db_url: str, tmp_path: Path) -> None:
    await upgrade(db_url)
    engine = create_engine(db_url)
    writer = BufferedTraceWriter(engine, tmp_path / "spill.jsonl")
    now = time.time()
    number = iter(range(1000))

    def asked(
        question: str,
        asker: str,
        audience: str = "public",
        mode: str = "answer",
        age_days: float = 0,
    ) -> None:
        writer.submit(
            {
                "request_id": f"r{next(number):04d}",
                "created_at": now - age_days * 86400,
                "platform": "slack",
                "asker": asker,
                "mode": mode,
                "audience": audience,
                "question": question,
            }
        )

    for person in ("a@x.example", "b@x.example", "c@x.example"):
        asked("How long does a guest Wi-Fi pass last?", person)
    for person in ("a@x.example", "b@x.example"):
        asked("what portal do I use for the VPN", person)
        asked("What is my salary band?", person, audience="dm")  # private
        asked("Is [email] on the allow list?", person)  # personal data, redacted
        asked("Where is the old office?", person, age_days=60)  # too long ago
        asked("Can I see the secret plan?", person, mode="refused")  # not answered
    asked("What portal do I use for the VPN?", "c@x.example")  # the same, worded otherwise
    for _ in range(3):
        asked("How do I reset my Okta password?", "a@x.example")  # one person only
    assert await writer.flush()
    try:
        assert await most_asked_questions(engine) == [
            "How long does a guest Wi-Fi pass last?",
            "what portal do I use for the VPN",
        ]
        assert await most_asked_questions(engine, limit=1) == [
            "How long does a guest Wi-Fi pass last?"
        ]
    finally:
        await writer.close()
        await engine.dispose()
