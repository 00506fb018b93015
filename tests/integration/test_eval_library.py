"""Library files as people write them, through the CLI: every bad line reported with its line
number and nothing run; and cases harvested from real traffic."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings
from tests.support.cli import assert_usage_error, run

BAD_YAML = """\
name: broken
tolerances:
  retrieval.recall@5: 0.01
  retrieval.recal@5: 0.02
cases:
  - id: ok-case
    question: How long does a guest Wi-Fi pass last?
    as: jordan.kim@harborlight.example
  - id: ok-case
    question: Second use of the same id
    as: jordan.kim@harborlight.example
  - id: no-question
    as: jordan.kim@harborlight.example
  - id: bad-mode
    question: What is the limit?
    as: not-an-email
    expected_mode: maybe
    must_include: ["/unclosed(/"]
    colour: blue
"""


def test_every_bad_line_is_reported_and_nothing_runs(tmp_path: Path) -> None:
    library = tmp_path / "broken.yaml"
    library.write_text(BAD_YAML)
    report = tmp_path / "report"
    done = run(tmp_path, "eval", str(library), "--report", str(report))
    assert done.returncode == 2, done.stderr
    problems = done.stderr.strip().splitlines()
    expected = [
        "header: tolerance for unknown metric 'retrieval.recal@5'",
        "line 9: id 'ok-case' already used on line 6",
        "line 12: question: required",
        "line 16: as: required",
        "line 17: expected_mode: one of",
        "line 18: must_include: /unclosed(/ is not a valid regex",
        "line 19: colour: unknown field",
    ]
    for needle in expected:
        assert any(needle in line for line in problems), (needle, problems)
    assert all(line.startswith(f"eval: {library}: ") for line in problems)
    assert not report.exists()
    assert not (tmp_path / "var").exists()  # no service was built, nothing written


def test_jsonl_library_problems_have_line_numbers(tmp_path: Path) -> None:
    library = tmp_path / "cases.jsonl"
    library.write_text(
        '{"library": {"name": "j", "tolerances": {"default": 0.01}}}\n'
        '{"id": "a", "question": "q?", "as": "a@b.example"}\n'
        "\n"
        "{not json\n"
        '{"id": "b", "question": "q?", "as": "a@b.example", "tags": ["Bad Tag"]}\n'
    )
    done = run(tmp_path, "eval", str(library))
    assert done.returncode == 2
    assert "line 4: invalid JSON" in done.stderr
    assert "line 5: tags: 'Bad Tag' is not a tag" in done.stderr


def test_usage_errors(tmp_path: Path) -> None:
    assert_usage_error(run(tmp_path, "eval", str(tmp_path / "missing.yaml")), "cannot read")
    library = tmp_path / "lib.yaml"
    library.write_text("cases:\n  - {id: a, question: Why, as: a@b.example}\n")
    assert_usage_error(
        run(tmp_path, "eval", str(library), "--fail-on-regression"), "needs --baseline"
    )
    assert_usage_error(run(tmp_path, "eval", "harvest"), "--out")
    assert_usage_error(
        run(tmp_path, "eval", "harvest", "--out", str(tmp_path / "x.yaml"), "--since", "7x"),
        "--since",
    )


def ask(tmp_path: Path, data_dir: Path, questions: list[dict], config: Path) -> list[dict]:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions))
    done = run(
        tmp_path,
        "ask",
        "--file",
        str(path),
        env={"ANSWERDESK_DATA_DIR": str(data_dir), "ANSWERDESK_CONFIG": str(config)},
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
def test_harvest_drafts_cases_from_traffic(demo_settings: Settings, tmp_path: Path) -> None:
    data_dir = demo_settings.data_dir
    config = tmp_path / "answerdesk.yaml"
    config.write_text("cache: {enabled: false}\n")
    jordan = "jordan.kim@harborlight.example"
    answers = ask(
        tmp_path,
        data_dir,
        [
            {"question": "How long does a guest Wi-Fi pass last?", "as": jordan},
            {"question": "how long does the guest wifi pass last", "as": jordan},  # same meaning
            {"question": "What is the hotel limit for Seattle?", "as": jordan},
            {"question": "I want to talk to a human", "as": jordan},
            {"question": "How many PTO days after 3 years?", "as": jordan, "audience": "public"},
            {"question": "Email me at jordan.kim@harborlight.example: VPN portal?", "as": jordan},
        ],
        config,
    )
    hotel = answers[2]["request_id"]
    from adapters.db.conversations import SqlConversationStore
    from adapters.db.engine import create_engine

    async def vote() -> None:  # a 👎 the way the conversation layer records a chat vote
        engine = create_engine(demo_settings.db_url)
        try:
            await SqlConversationStore(engine).vote(hotel, "U03JKIM8QX", -1)
        finally:
            await engine.dispose()

    asyncio.run(vote())
    out = tmp_path / "drafts.yaml"
    env = {"ANSWERDESK_DATA_DIR": str(data_dir), "ANSWERDESK_CONFIG": str(config)}
    done = run(tmp_path, "eval", "harvest", "--since", "1d", "--out", str(out), "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    drafts = yaml.safe_load(out.read_text())["cases"]
    assert summary["drafts"] == len(drafts) == 5
    assert summary["duplicates_dropped"] == 1
    reasons = [d["origin"]["reason"] for d in drafts]
    assert reasons[:2] == ["downvoted", "handoff"]
    assert drafts[0]["origin"]["request_id"] == hotel
    assert drafts[0]["origin"]["retrieved"][0]["document_id"] == "handbook/expenses-and-travel.md"
    assert all(d["status"] == "draft" and d["as"] == jordan for d in drafts)
    assert "public" in {d["audience"] for d in drafts}
    assert not any("jordan.kim@harborlight.example:" in d["question"] for d in drafts)
    assert any("[email]" in d["question"] for d in drafts)  # tracing.redaction: pii
    # Drafts are not run until a person has reviewed them.
    not_yet = run(tmp_path, "eval", str(out), env=env)
    assert not_yet.returncode == 2 and "no cases to run (5 drafts)" in not_yet.stderr
    # A second harvest refuses to overwrite the first.
    again = run(tmp_path, "eval", "harvest", "--out", str(out), env=env)
    assert_usage_error(again, "exists")
    # With question text not traced at all, nothing can be drafted.
    strict = tmp_path / "strict.yaml"
    strict.write_text("tracing: {redaction: all}\n")
    env["ANSWERDESK_CONFIG"] = str(strict)
    none = run(tmp_path, "eval", "harvest", "--out", str(tmp_path / "none.yaml"), "--json", env=env)
    assert none.returncode == 0, none.stderr
    assert json.loads(none.stdout)["drafts"] == 0
    assert json.loads(none.stdout)["without_question_text"] == 6
