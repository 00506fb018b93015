"""The README's Operations examples, run as a reader runs them: the slo.yaml copied into a
file named by the configuration, the report and the purge command lines through the CLI."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import yaml

from tests.integration.test_readme_examples import blocks, commands, section
from tests.support.cli import REPO, run
from tests.support.seed import seed, trace


def test_the_slo_file_and_the_report(tmp_path: Path) -> None:
    [slo] = blocks(section("### The service agreement (`slo.yaml`)"), "yaml")
    (tmp_path / "slo.yaml").write_text(slo)
    assert set(yaml.safe_load(slo)["objectives"]) == {
        "answer_latency",
        "first_text_latency",
        "cache_hit_latency",
        "availability",
        "degraded_share",
        "handoff_rate",
        "thumbs_down_share",
        "cost_per_request_mean",
        "cost_per_request_p95",
        "monthly_budget",
    }
    (tmp_path / "answerdesk.yaml").write_text("slo:\n  file: slo.yaml\n")
    now = time.time()
    history = [trace(i * 600 + 30, now, cost_usd=0.002) for i in range(50)]
    history.append(trace(100, now, cache={"status": "hit"}, latency_ms=120.0, cost_usd=0.0))
    (tmp_path / "var").mkdir()
    asyncio.run(seed(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'answerdesk.db'}", history))

    [(env, args)] = commands(blocks(section("### The report"), "sh")[0])
    assert args[:2] == ["slo", "report"]
    done = run(tmp_path, *args, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("answer_latency", "monthly_budget", "platform-team", "finance"):
        assert name in done.stdout
    report = json.loads(run(tmp_path, *args, "--json", env=env, cwd=tmp_path).stdout)
    hits = next(o for o in report["objectives"] if o["name"] == "cache_hit_latency")
    assert (hits["events"], hits["met"]) == (1, True)


def test_the_retention_commands(tmp_path: Path) -> None:
    lines = commands(blocks(section("### Retention"), "sh")[0])
    assert [args[:2] for _, args in lines] == [["maintenance", "purge"]] * 2
    now = time.time()
    (tmp_path / "var").mkdir()
    asyncio.run(
        seed(
            f"sqlite+aiosqlite:///{tmp_path / 'var' / 'answerdesk.db'}",
            [trace(31 * 86400, now), trace(60, now)],
        )
    )
    dry, real = (run(tmp_path, *args, env=env, cwd=REPO) for env, args in lines)
    assert dry.returncode == real.returncode == 0, dry.stderr + real.stderr
    assert "would remove 1 traces" in dry.stdout
    assert "removed 1 traces" in real.stdout
