"""The README's "Launch checklist and releases" examples, run as a reader runs them: the
release file copied out and its commands through the CLI. The model tiers it names are
pointed at the local model-server double (no test reaches the network); everything else is
as written."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.settings import Settings
from tests.integration.test_readme_examples import blocks, commands, section
from tests.support.cli import REPO, assert_usage_error, run
from tests.support.model_server import ModelServer

GATE_LIBRARY = REPO / "tests" / "data" / "eval" / "demo_gate_library.yaml"
PLACEHOLDER = "3f2a9c1b7e4d"


def test_the_release_file_and_commands(demo_settings: Settings, tmp_path: Path) -> None:
    [example] = blocks(section("### Releases"), "yaml")
    release = yaml.safe_load(example)
    with ModelServer() as server:
        for tier in release["models"]["tiers"]:
            tier["api_base"] = server.url
        (tmp_path / "release.yaml").write_text(yaml.safe_dump(release))
        # The configuration answers with the same tiers: the gate compares like with like.
        (tmp_path / "answerdesk.yaml").write_text(yaml.safe_dump({"models": release["models"]}))
        env = {
            "ANSWERDESK_DATA_DIR": str(demo_settings.data_dir),
            "ANSWERDESK_CONFIG": str(tmp_path / "answerdesk.yaml"),
            "ANSWERDESK_RELEASES__GATE_LIBRARY": str(GATE_LIBRARY),
            "OPENAI_API_KEY": "sk-test",
        }
        lines = commands(blocks(section("### Releases"), "sh")[0])
        assert [args[:2] for _, args in lines] == [
            ["release", "create"],
            ["release", "list"],
            ["release", "show"],
            ["release", "diff"],
            ["release", "activate"],
            ["release", "rollback"],
        ]
        outputs: list[str] = []
        created = ""
        for extra, args in lines:
            # The README's id is a placeholder for the one just created.
            args = [a.replace(PLACEHOLDER, created).replace("3f2a", created[:4]) for a in args]
            done = run(tmp_path, *args, env={**env, **extra}, cwd=tmp_path)
            assert done.returncode == 0, (args, done.stdout + done.stderr)
            outputs.append(done.stdout)
            if args[1] == "create":
                created = done.stdout.split()[1]
        assert "cheaper tier first" in outputs[1]
        assert "layoffs" in outputs[2] and "gpt-4o-mini" in outputs[2]
        assert "policy.prohibited_topics.0.name" in outputs[3]
        assert f"release {created} is active" in outputs[4] and "gate passed" in outputs[4]
        assert f"rolled back {created}" in outputs[5]
        assert server.requests_for("gpt-4o-mini") or server.requests_for("gpt-4o")


def test_the_preflight_command(tmp_path: Path) -> None:
    [(env, args)] = commands(blocks(section("### The pre-launch checklist"), "sh")[0])
    assert args[0] == "preflight"
    (tmp_path / "answerdesk.yaml").write_text("retention: {max_age: 30d}\n")
    done = run(tmp_path, *args, env=env, cwd=tmp_path)
    # A fresh data dir is not ready to launch: the failing items say what to do.
    assert done.returncode == 1, done.stdout + done.stderr
    marks = [line.split()[:2] for line in done.stdout.splitlines() if line[:4] in ("PASS", "FAIL")]
    assert len(marks) == 13
    assert ["FAIL", "service_agreement"] in marks and ["FAIL", "rollback"] in marks
    assert ["PASS", "retention"] in marks and ["PASS", "acl_self_test"] in marks
    assert "→ " in done.stdout
    bad = run(tmp_path, "preflight", "--library", "missing.yaml", env=env, cwd=tmp_path)
    assert_usage_error(bad, "missing.yaml")
