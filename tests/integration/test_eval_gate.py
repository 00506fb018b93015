"""The evaluation gate, as CI runs it: the demo library through the real CLI against the
committed baselines, once with the extractive tier (no model configured) and once with the
local model-server double answering with citations. Then the gate is shown to bite: a
retrieval broken by configuration (k=1), by a wrong embedder, or by an ACL rule dropped at
ingestion makes `eval --fail-on-regression` exit 1."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings
from tests.conftest import DEMO
from tests.support.cli import REPO, run
from tests.support.model_server import ModelServer

pytestmark = pytest.mark.slow

LIBRARY = DEMO / "eval" / "library.yaml"
MODEL_BASELINE = REPO / "tests" / "data" / "eval" / "demo_model_baseline.json"
REQUIRED = (
    ("retrieval", "recall@5"),
    ("retrieval", "mrr"),
    ("retrieval", "ndcg@10"),
    ("generation", "citation_validity"),
    ("generation", "citation_recall"),
    ("generation", "must_include_rate"),
    ("generation", "mode_accuracy"),
    ("generation", "permission_leaks"),
    ("latency", "p95_ms"),
    ("cost", "mean_usd"),
)
MODEL_KEY = {"ANSWERDESK_TEST_MODEL_KEY": "sk-test"}


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        running.set_default("judge", 'text:{"groundedness": 4, "relevance": 5, "reason": "ok"}')
        yield running


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def model_config(tmp_path: Path, server: ModelServer, data_dir: Path) -> Path:
    """The configuration the model-double baseline was made with (see the README)."""
    return write_config(
        tmp_path / "model-double.yaml",
        {
            "data_dir": str(data_dir),
            "models": {
                "tiers": [
                    {
                        "name": "fast",
                        "model": "openai/fast",
                        "api_base": server.url,
                        "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
                        "input_cost_per_token": 1e-6,
                        "output_cost_per_token": 2e-6,
                    }
                ]
            },
            "eval": {
                "judge_model": "openai/judge",
                "judge_api_base": server.url,
                "judge_api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
            },
        },
    )


def load_demo(tmp_path: Path, corpus: Path, acl: Path, env: dict) -> None:
    """The demo directory and corpus, loaded through the CLI into a fresh data dir."""
    imported = run(tmp_path, "directory", "import", str(DEMO / "directory.yaml"), env=env)
    assert imported.returncode == 0, imported.stderr
    ingested = run(tmp_path, "ingest", str(corpus), "--acl-file", str(acl), env=env)
    assert ingested.returncode == 0, ingested.stderr


def evaluate(tmp_path: Path, data_dir: Path, *args: str, env: dict | None = None):
    return run(
        tmp_path,
        "eval",
        str(LIBRARY),
        *args,
        env={"ANSWERDESK_DATA_DIR": str(data_dir), **(env or {})},
        cwd=REPO,
    )


def test_extractive_tier_holds_the_committed_baseline(
    demo_settings: Settings, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    done = evaluate(
        tmp_path, demo_settings.data_dir, "--fail-on-regression", "--report", str(report)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((report / "summary.json").read_text())
    assert summary["cases"] >= 60
    for section, name in REQUIRED:
        assert isinstance(summary[section][name], int | float), (section, name)
        for tag, figures in summary["by_tag"].items():
            assert name in figures[section], (tag, section, name)
    tags = set(summary["by_tag"])
    assert {"common", "hard", "ambiguous", "adversarial", "acl", "unanswerable"} <= tags
    assert {"multilingual", "follow-up", "channel"} <= tags
    assert summary["generation"]["permission_leaks"] == 0
    # The worst cases carry request ids that `trace show` explains.
    markdown = (report / "report.md").read_text()
    cases = [json.loads(line) for line in (report / "cases.jsonl").read_text().splitlines()]
    assert len(cases) == summary["cases"]
    worst = [c for c in cases if c["failed"] and f"`{c['request_id']}`" in markdown]
    assert worst, markdown
    shown = run(
        tmp_path,
        "trace",
        "show",
        worst[0]["request_id"],
        "--json",
        env={"ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)},
    )
    assert shown.returncode == 0, shown.stderr
    trace = json.loads(shown.stdout)
    assert trace["platform"] == "eval"
    assert trace["question"] == worst[0]["question"]


def test_model_double_holds_its_committed_baseline(
    demo_settings: Settings, tmp_path: Path, server: ModelServer
) -> None:
    config = model_config(tmp_path, server, demo_settings.data_dir)
    done = evaluate(
        tmp_path,
        demo_settings.data_dir,
        "--config",
        str(config),
        "--baseline",
        str(MODEL_BASELINE),
        "--fail-on-regression",
        "--json",
        env=MODEL_KEY,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["config"] == "model-double"
    assert summary["cost"]["mean_usd"] > 0
    assert summary["generation"]["groundedness"] == 4  # the judge's grade, not gated
    assert server.requests_for("fast"), "the model tier was not called"


def test_k1_fails_the_gate_and_configurations_compare_side_by_side(
    demo_settings: Settings, tmp_path: Path
) -> None:
    good = write_config(tmp_path / "default.yaml", {"data_dir": str(demo_settings.data_dir)})
    broken = write_config(
        tmp_path / "k1.yaml",
        {"data_dir": str(demo_settings.data_dir), "retrieval": {"top_k": 1}},
    )
    done = evaluate(
        tmp_path,
        demo_settings.data_dir,
        "--config",
        str(good),
        "--config",
        str(broken),
        "--fail-on-regression",
        "--report",
        str(tmp_path / "report"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    regressions = [line for line in done.stderr.splitlines() if "regression" in line]
    assert regressions and all(line.startswith("eval: k1: regression:") for line in regressions)
    assert any("generation.citation_recall" in line for line in regressions)
    header = next(line for line in done.stdout.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "default", "k1"]
    assert (tmp_path / "report" / "default" / "summary.json").is_file()
    assert (tmp_path / "report" / "k1" / "summary.json").is_file()


def test_a_dropped_acl_rule_fails_the_gate_whatever_the_baseline(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    policy = yaml.safe_load((DEMO / "acl.yaml").read_text())
    policy["rules"] = [r for r in policy["rules"] if r["match"] != "finance/**"]
    loose = write_config(tmp_path / "loose-acl.yaml", policy)
    corpus = tmp_path / "corpus"
    shutil.copytree(DEMO / "corpus", corpus)
    env = {"ANSWERDESK_DATA_DIR": str(data_dir)}
    assert (
        run(tmp_path, "directory", "import", str(DEMO / "directory.yaml"), env=env).returncode == 0
    )
    ingested = run(tmp_path, "ingest", str(corpus), "--acl-file", str(loose), env=env)
    assert ingested.returncode == 0, ingested.stderr
    done = evaluate(tmp_path, data_dir, "--json")  # no baseline at all: leaks still fail
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["generation"]["permission_leaks"] >= 1
    assert "leaked documents" in done.stderr


def test_a_wrong_embedder_fails_the_gate(tmp_path: Path, server: ModelServer) -> None:
    """A bag-of-words embedder (the model double's /v1/embeddings) instead of MiniLM."""
    data_dir = tmp_path / "var"
    config = write_config(
        tmp_path / "bag-of-words.yaml",
        {
            "data_dir": str(data_dir),
            "embeddings": {
                "model": "openai/bag-of-words",
                "dimension": 64,
                "api_base": server.url,
                "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
            },
        },
    )
    env = {**MODEL_KEY, "ANSWERDESK_CONFIG": str(config)}
    assert (
        run(tmp_path, "directory", "import", str(DEMO / "directory.yaml"), env=env).returncode == 0
    )
    ingested = run(
        tmp_path, "ingest", str(DEMO / "corpus"), "--acl-file", str(DEMO / "acl.yaml"), env=env
    )
    assert ingested.returncode == 0, ingested.stderr
    done = evaluate(tmp_path, data_dir, "--fail-on-regression", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "regression: retrieval." in done.stderr
