"""Releases through the command line, on the ingested demo (embedded setup): create, list,
show, diff, activate behind the evaluation gate, rollback; the gate refusing a release that
makes answers worse, and an override recorded with the admin's name and reason; a canary
taking its share by conversation, compared with `slo report --release`, then ended by a
rollback and by a promotion. Every answer's trace names the release that gave it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot.settings import Settings
from core.releases import canary_bucket
from tests.support.cli import REPO, assert_usage_error, run

pytestmark = pytest.mark.slow

GATE_LIBRARY = REPO / "tests" / "data" / "eval" / "demo_gate_library.yaml"
JORDAN = "jordan.kim@harborlight.example"
KAYAK = "Can I borrow a kayak from the gear room?"
WIFI = "How long does a guest Wi-Fi pass last?"
NO_KAYAKS = """policy:
  prohibited_topics:
    - name: kayaks
      action: refuse
      message: Kayak questions go to the outdoor team.
      patterns: [kayak]
"""
TOP_K_ONE = "retrieval: {top_k: 1}\n"  # answers from one passage: the demo library regresses
SLO = """approved_by: Dana Whitcombe
approved_on: 2026-11-30
objectives:
  answer_latency: {p95_s: 30, owner: platform-team}
  availability: {min: 0.99, owner: platform-team}
  handoff_rate: {max: 0.5, owner: support-team}
"""


@pytest.fixture
def env(demo_settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {
        "ANSWERDESK_DATA_DIR": str(demo_settings.data_dir),
        "ANSWERDESK_RELEASES__GATE_LIBRARY": str(GATE_LIBRARY),
        "USER": "ops-runner",
    }


def cli(tmp_path: Path, env: dict[str, str], *args: str):
    return run(tmp_path, *args, env=env)


def ok_json(tmp_path: Path, env: dict[str, str], *args: str) -> dict:
    done = cli(tmp_path, env, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def create(tmp_path: Path, env: dict[str, str], name: str, text: str, note: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return ok_json(tmp_path, env, "release", "create", "--from", str(path), "--note", note)["id"]


def releases_of(data_dir: str, request_ids: list[str]) -> dict[str, str]:
    """The release each request's trace records (read as stored)."""
    with sqlite3.connect(Path(data_dir) / "answerdesk.db") as db:
        rows = db.execute(
            "SELECT request_id, json_extract(data, '$.release') FROM traces"
        ).fetchall()
    found = dict(rows)
    return {rid: found[rid] for rid in request_ids}


def ask(tmp_path: Path, env: dict[str, str], question: str = KAYAK) -> dict:
    return ok_json(tmp_path, env, "ask", question, "--as", JORDAN)


def asks(tmp_path: Path, env: dict[str, str], *questions: str) -> list[dict]:
    """Several questions in one process (`ask --file`), in order."""
    path = tmp_path / "asks.jsonl"
    path.write_text("".join(json.dumps({"question": q, "as": JORDAN}) + "\n" for q in questions))
    done = cli(tmp_path, env, "ask", "--file", str(path))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_create_show_diff_activate_and_roll_back(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"  # the file's other mistakes: tests/unit/test_releases.py
    bad.write_text("models: {tiers: [{name: f, model: openai/f, api_key: sk-live-1}]}\n")
    done = cli(tmp_path, env, "release", "create", "--from", str(bad), "--note", "x")
    assert_usage_error(done, "api_key_env")
    assert "sk-live-1" not in done.stderr
    done = cli(tmp_path, env, "release", "create", "--from", str(bad), "--note", " ")
    assert_usage_error(done, "--note")
    assert ok_json(tmp_path, env, "release", "list")["releases"] == []  # nothing written

    kayaks = create(tmp_path, env, "kayaks", NO_KAYAKS, "kayak questions to the outdoor team")
    again = ok_json(
        tmp_path, env, "release", "create", "--from", str(tmp_path / "kayaks.yaml"), "--note", "y"
    )
    assert again["id"] == kayaks and again["created"] is False
    overview = ok_json(tmp_path, env, "release", "list")
    configured = overview["configuration_file_release"]
    assert overview["active"] is None and overview["answering"] == configured
    changes = ok_json(tmp_path, env, "release", "diff", "active", kayaks[:6])["changes"]
    assert {"key": "policy.prohibited_topics.0.name", "old": None, "new": "kayaks"} in changes
    shown = ok_json(tmp_path, env, "release", "show", kayaks)
    assert shown["created_by"] == "ops-runner" and shown["note"].startswith("kayak questions")
    assert shown["content"]["policy"]["prohibited_topics"][0]["patterns"] == ["kayak"]

    kayak, wifi, wifi_again = asks(tmp_path, env, KAYAK, WIFI, WIFI)
    assert kayak["mode"] != "refused" and wifi_again["cache"]["status"] == "hit"
    activated = ok_json(tmp_path, env, "release", "activate", kayaks, "--as", "dana")
    assert activated["gate"]["passed"] and activated["replaced"] == configured
    assert activated["gate"]["cases"] == 10 and activated["gate"]["active"]["release"] == configured
    after, wifi_new, wifi_new_again = asks(tmp_path, env, KAYAK, WIFI, WIFI)
    assert after["mode"] == "refused" and "outdoor team" in after["text"]
    # The entry the configuration's release wrote is not this release's: a fresh answer.
    assert wifi_new["cache"] == {"status": "miss", "reason": "made by another release"}
    assert wifi_new_again["cache"]["status"] == "hit"
    trace = ok_json(tmp_path, env, "trace", "show", after["request_id"])
    assert trace["release"] == kayaks
    recorded = releases_of(
        env["ANSWERDESK_DATA_DIR"], [a["request_id"] for a in (wifi, wifi_new, wifi_new_again)]
    )
    assert list(recorded.values()) == [configured, kayaks, kayaks]
    listed = {r["id"]: r["state"] for r in ok_json(tmp_path, env, "release", "list")["releases"]}
    assert listed == {kayaks: "active", configured: "previous"}

    assert_usage_error(cli(tmp_path, env, "release", "activate", kayaks), "already active")
    assert_usage_error(cli(tmp_path, env, "release", "activate", kayaks, "--share", "0"), "--share")
    assert_usage_error(cli(tmp_path, env, "release", "activate", kayaks, "--force"), "--reason")

    rolled = ok_json(tmp_path, env, "release", "rollback", "--as", "dana")
    assert rolled["rolled_back"] == kayaks and rolled["state"]["active"] == configured
    back, wifi_back = asks(tmp_path, env, KAYAK, WIFI)
    assert back["mode"] != "refused"
    assert wifi_back["cache"]["status"] == "hit"  # the configuration release's entry again
    assert ok_json(tmp_path, env, "trace", "show", back["request_id"])["release"] == configured
    assert_usage_error(cli(tmp_path, env, "release", "rollback"), "no previous release")


def test_the_gate_refuses_a_regression_and_records_an_override(
    tmp_path: Path, env: dict[str, str]
) -> None:
    narrow = create(tmp_path, env, "narrow", TOP_K_ONE, "fewer sources, cheaper prompts")
    refused = cli(tmp_path, env, "release", "activate", narrow, "--as", "lee")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line and line.startswith("release activate: refused: ")
    assert any(metric in line for metric in ("generation.", "retrieval."))
    overview = ok_json(tmp_path, env, "release", "list")
    assert overview["active"] is None
    events = ok_json(tmp_path, env, "release", "show", narrow)["events"]
    assert events[0]["action"] == "refused" and events[0]["actor"] == "lee"
    assert events[0]["gate"]["regressions"] and not events[0]["gate"]["passed"]

    forced = ok_json(
        tmp_path,
        env,
        "release",
        "activate",
        narrow,
        "--force",
        "--reason",
        "INC-42: the model bill, approved by finance",
        "--as",
        "dana",
    )
    assert forced["activated"] and forced["forced"] and not forced["gate"]["passed"]
    event = ok_json(tmp_path, env, "release", "show", narrow)["events"][0]
    assert (event["action"], event["actor"], event["forced"]) == ("activate", "dana", True)
    assert event["reason"] == "INC-42: the model bill, approved by finance"
    assert event["gate"]["problem"] == forced["gate"]["problem"]
    answer = ask(tmp_path, env, "How long does a guest Wi-Fi pass last?")
    assert ok_json(tmp_path, env, "trace", "show", answer["request_id"])["release"] == narrow
    shown = cli(tmp_path, env, "release", "show", narrow)
    assert "GATE OVERRIDDEN" in shown.stdout and "INC-42" in shown.stdout


def test_a_canary_takes_its_share_by_conversation(tmp_path: Path, env: dict[str, str]) -> None:
    kayaks = create(tmp_path, env, "kayaks", NO_KAYAKS, "kayak questions to the outdoor team")
    configured = ok_json(tmp_path, env, "release", "list")["configuration_file_release"]
    started = ok_json(tmp_path, env, "release", "activate", kayaks, "--share", "40")
    assert started["state"] == {"active": configured, "canary": kayaks, "share": 40}
    conversations = [f"slack:T1:C9:{1700000000 + i}.000100" for i in range(16)]
    on_canary = {c for c in conversations if canary_bucket(kayaks, c) < 40}
    assert 0 < len(on_canary) < len(conversations)
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"question": q, "as": JORDAN, "conversation": c}) + "\n"
            for c in conversations
            for q in (KAYAK, "And may I keep the kayak over the weekend?")
        )
    )
    done = cli(tmp_path, env, "ask", "--file", str(questions))
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == 2 * len(conversations)
    recorded = releases_of(env["ANSWERDESK_DATA_DIR"], [a["request_id"] for a in answers])
    for i, answer in enumerate(answers):
        conversation = conversations[i // 2]
        canary = conversation in on_canary  # both questions of a thread: one release
        assert recorded[answer["request_id"]] == (kayaks if canary else configured)
        assert (answer["mode"] == "refused") == canary, (conversation, answer["mode"])

    (tmp_path / "slo.yaml").write_text(SLO)
    compared = ok_json(
        tmp_path, env, "slo", "report", "--file", str(tmp_path / "slo.yaml"), "--release"
    )["releases"]
    assert [(r["release"], r["role"]) for r in compared] == [
        (configured, "active"),
        (kayaks, "canary 40%"),
    ]
    requests = {r["release"]: r["report"]["outcomes"]["requests"] for r in compared}
    # The gate's evaluation runs are not requests: only the asks above count.
    assert requests == {kayaks: 2 * len(on_canary), configured: len(answers) - 2 * len(on_canary)}
    table = cli(tmp_path, env, "slo", "report", "--file", str(tmp_path / "slo.yaml"), "--release")
    assert table.returncode == 0 and f"{kayaks} (canary 40%)" in table.stdout

    ended = ok_json(tmp_path, env, "release", "rollback")
    assert ended["rolled_back"] == kayaks and ended["state"]["canary"] is None
    canary_thread = sorted(on_canary)[0]
    after = ok_json(tmp_path, env, "ask", KAYAK, "--as", JORDAN, "--conversation", canary_thread)
    assert after["mode"] != "refused"

    ok_json(tmp_path, env, "release", "activate", kayaks, "--share", "10")
    promoted = ok_json(tmp_path, env, "release", "promote", "--as", "dana")
    assert promoted["state"] == {"active": kayaks, "canary": None, "share": None}
    other_thread = sorted(set(conversations) - on_canary)[0]
    now = ok_json(tmp_path, env, "ask", KAYAK, "--as", JORDAN, "--conversation", other_thread)
    assert now["mode"] == "refused"
