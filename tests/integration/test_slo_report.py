"""`answerdesk slo report` as an operator runs it: an slo.yaml named in the config file,
traces in the database, the CLI in a subprocess (SQLite, and PostgreSQL when available)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.support.cli import assert_usage_error, run
from tests.support.seed import seed, trace

SLO = """\
approved_by: Dana Whitcombe (VP Customer Operations)
approved_on: 2026-11-30
objectives:
  answer_latency: {p95_s: 8, owner: platform-team}
  availability: {min: 0.99, owner: platform-team}
  degraded_share: {max: 0.05, owner: answers-team}
  handoff_rate: {max: 0.20, owner: support-team}
  thumbs_down_share: {max: 0.25, owner: content-team}
  cost_per_request_mean: {max_usd: 0.01, owner: finance}
"""


def configure(tmp_path: Path, slo: str = SLO, database_url: str | None = None) -> dict:
    (tmp_path / "slo.yaml").write_text(slo)
    (tmp_path / "answerdesk.yaml").write_text(f"slo:\n  file: {tmp_path / 'slo.yaml'}\n")
    env = {"ANSWERDESK_CONFIG": str(tmp_path / "answerdesk.yaml")}
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def db_url(tmp_path: Path) -> str:
    (tmp_path / "var").mkdir(exist_ok=True)
    return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'answerdesk.db'}"


def healthy_history(now: float) -> tuple[list[dict], dict, dict]:
    """100 requests over the last 50 hours: 2 slow, 1 degraded, 10 handoffs (5 tickets,
    resolved after 10 min to 50 min), 10 voted (2 👎)."""
    traces = []
    for i in range(100):
        facts: dict = {"latency_ms": 9500.0 if i in (3, 4) else 1200.0, "cost_usd": 0.004}
        if i == 7:
            facts.update(mode="degraded", notices=["extractive_only"])
        if 10 <= i < 20:
            facts.update(mode="handoff", tier=None, cost_usd=0.0)
        traces.append(trace(i * 1800 + 60, now, **facts))
    votes = {traces[i]["request_id"]: [1] for i in range(30, 38)}
    votes.update({traces[i]["request_id"]: [1, -1] for i in (40, 41)})
    tickets = {traces[i]["request_id"]: 600.0 * (i - 9) for i in range(10, 15)}
    return traces, votes, tickets


def test_report_on_a_healthy_week(tmp_path: Path) -> None:
    now = time.time()
    traces, votes, tickets = healthy_history(now)
    asyncio.run(seed(db_url(tmp_path), traces, votes, tickets))
    env = configure(tmp_path)
    done = run(tmp_path, "slo", "report", "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["approved_by"].startswith("Dana Whitcombe")
    assert report["failing"] == []
    by_name = {o["name"]: o for o in report["objectives"]}
    latency = by_name["answer_latency"]
    assert (latency["events"], latency["bad"], latency["met"]) == (100, 2, True)
    assert latency["actual"] == pytest.approx(1.2)
    assert latency["owner"] == "platform-team" and latency["target"] == 8
    assert latency["budget_left"] == pytest.approx(1 - 0.02 / 0.05)
    assert latency["budget_runs_out"] is False
    assert by_name["availability"]["actual"] == 1.0
    assert by_name["degraded_share"]["actual"] == pytest.approx(0.01)
    assert by_name["handoff_rate"]["actual"] == pytest.approx(0.10)
    thumbs = by_name["thumbs_down_share"]
    assert (thumbs["events"], thumbs["bad"]) == (10, 2)
    assert thumbs["actual"] == pytest.approx(0.2) and thumbs["met"] is True
    assert by_name["cost_per_request_mean"]["actual"] == pytest.approx(0.0036)
    assert set(latency["burn"]) == {"1h", "1h/short", "6h", "6h/short", "3d", "3d/short"}
    outcomes = report["outcomes"]
    assert outcomes["requests"] == 100 and outcomes["handoffs"] == 10
    assert (outcomes["votes_up"], outcomes["votes_down"]) == (8, 2)
    assert (outcomes["tickets_opened"], outcomes["tickets_resolved"]) == (5, 5)
    assert outcomes["resolution_p50_s"] == 1800.0  # 10, 20, 30, 40, 50 minutes

    text = run(tmp_path, "slo", "report", env=env)
    assert text.returncode == 0, text.stderr
    assert "answer_latency" in text.stdout and "platform-team" in text.stdout
    assert "5 tickets opened, 5 resolved" in text.stdout


def test_a_missed_target_and_a_fast_burn_exit_1(tmp_path: Path) -> None:
    now = time.time()
    traces, votes, tickets = healthy_history(now)
    # The last 40 minutes: 20 requests, all degraded.
    traces += [trace(i * 120, now, mode="degraded") for i in range(20)]
    asyncio.run(seed(db_url(tmp_path), traces, votes, tickets))
    env = configure(tmp_path)
    done = run(tmp_path, "slo", "report", "--json", env=env)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["failing"] == ["degraded_share"]
    degraded = next(o for o in report["objectives"] if o["name"] == "degraded_share")
    assert degraded["actual"] == pytest.approx(21 / 120)
    assert degraded["met"] is False
    # the last hour also holds two of the earlier requests (60 s and 1860 s old)
    assert degraded["burn"]["1h"] == pytest.approx((20 / 22) / 0.05)
    assert degraded["burn"]["1h/short"] == pytest.approx((3 / 4) / 0.05)
    assert degraded["alert"] == "page"
    assert degraded["budget_left"] < 0 and degraded["budget_runs_out"] is True
    text = run(tmp_path, "slo", "report", env=env)
    assert text.returncode == 1
    assert "FAILING: degraded_share" in text.stdout


def test_platform_and_window_filters(tmp_path: Path) -> None:
    now = time.time()
    traces = [trace(600, now, platform="teams", mode="degraded")]
    traces += [trace(600 + i, now) for i in range(9)]
    traces += [trace(10 * 86400, now, mode="degraded")]  # outside a 7-day window
    asyncio.run(seed(db_url(tmp_path), traces))
    env = configure(tmp_path)

    def degraded(*args: str) -> dict:
        done = run(tmp_path, "slo", "report", "--json", *args, env=env)
        report = json.loads(done.stdout)
        return next(o for o in report["objectives"] if o["name"] == "degraded_share")

    assert degraded()["events"] == 10 and degraded()["bad"] == 1
    assert degraded("--platform", "slack")["bad"] == 0
    assert degraded("--platform", "teams")["events"] == 1
    assert degraded("--since", "30d")["events"] == 11
    assert degraded("--since", "1h")["events"] == 10


@pytest.mark.parametrize(
    ("slo", "needles"),
    [
        (SLO.replace(", owner: finance", ""), ("objectives.cost_per_request_mean.owner",)),
        (SLO + "  latency_p99: {p99_s: 9, owner: x}\n", ("objectives.latency_p99",)),
        (SLO.replace("min: 0.99", "min: 99.5"), ("objectives.availability.min", "less than 1")),
        (SLO.replace("approved_on: 2026-11-30", "approved_on: last week"), ("approved_on",)),
        (SLO.replace("objectives:", "period: 2h\nobjectives:"), ("period", "between 1d")),
        ("approved_by: x\napproved_on: 2026-01-01\nobjectives: {}\n", ("at least one",)),
        ("- just a list\n", ("expected a mapping",)),
        ("objectives: [unclosed\n", ("cannot read",)),
    ],
)
def test_an_invalid_slo_file_is_one_line_and_exit_2(
    tmp_path: Path, slo: str, needles: tuple[str, ...]
) -> None:
    env = configure(tmp_path, slo)
    done = run(tmp_path, "slo", "report", env=env)
    assert_usage_error(done, "slo report: slo file", *needles)
    assert not (tmp_path / "var" / "answerdesk.db").exists()  # nothing written


def test_bad_arguments(tmp_path: Path) -> None:
    env = configure(tmp_path)
    assert_usage_error(run(tmp_path, "slo", "report", "--since", "a week", env=env), "--since")
    done = run(tmp_path, "slo", "report")  # no slo.file configured
    assert_usage_error(done, "no SLO file")
    missing = run(tmp_path, "slo", "report", "--file", str(tmp_path / "nope.yaml"))
    assert_usage_error(missing, "not found")


@pytest.mark.postgres
def test_report_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    now = time.time()
    traces, votes, tickets = healthy_history(now)
    asyncio.run(seed(postgres_url, traces, votes, tickets))
    done = run(
        tmp_path, "slo", "report", "--json", env=configure(tmp_path, database_url=postgres_url)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    by_name = {o["name"]: o for o in json.loads(done.stdout)["objectives"]}
    assert by_name["answer_latency"]["bad"] == 2
    assert by_name["thumbs_down_share"]["events"] == 10
    assert by_name["cost_per_request_mean"]["actual"] == pytest.approx(0.0036)
