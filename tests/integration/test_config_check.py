"""Configuration as operators write it: a YAML file, environment variables and the real CLI
in a subprocess (`answerdesk config check`, and commands that load the same settings)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.support.cli import REPO, assert_usage_error, run
from tests.support.model_server import ModelServer, unused_port

README = REPO / "README.md"
JORDAN = "jordan.kim@harborlight.example"


def readme_config() -> str:
    """The YAML block under "## Configuration", exactly as a user would copy it."""
    text = README.read_text()
    section = text[text.index("## Configuration") : text.index("## Connect to Slack")]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return block


def write(tmp_path: Path, text: str, name: str = "answerdesk.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_readme_configuration_passes_config_check(tmp_path: Path) -> None:
    config = write(tmp_path, readme_config())
    env = {"ANSWERDESK_CONFIG": str(config), "OPENAI_API_KEY": "sk-live-value-123"}
    done = run(tmp_path, "config", "check", env=env)
    assert done.returncode == 0, done.stderr
    assert "sk-live-value-123" not in done.stdout + done.stderr
    assert "ok       models.tiers.fast: openai/gpt-4o-mini: OPENAI_API_KEY is set" in done.stdout
    report = json.loads(run(tmp_path, "config", "check", "--json", env=env).stdout)
    assert report["usable"] is True and report["problems"] == []
    tier = report["effective"]["models"]["tiers"][0]
    # The documented settings about tokens load from the file as written...
    assert (tier["max_output_tokens"], tier["input_cost_per_token"]) == (500, None)
    assert tier["api_key"] == "**********"  # ...and the key, read from the environment, masked
    assert report["effective"]["slack"]["socket_mode"] is False
    # Every key of the documented example is in the effective configuration.
    documented = yaml.safe_load(readme_config())
    assert set(documented) <= set(report["effective"])
    for section, values in documented.items():
        if isinstance(values, dict):
            assert set(values) <= set(report["effective"][section]), section


def test_a_missing_key_is_one_problem_line(tmp_path: Path) -> None:
    config = write(tmp_path, readme_config())
    done = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(config)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "models.tiers.fast: openai/gpt-4o-mini: OPENAI_API_KEY is not set"
    ]


def test_readme_configuration_answers_through_its_tier(demo_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The user's path: copy the example, point the tier at their endpoint, ask."""
    with ModelServer() as server:
        data = yaml.safe_load(readme_config())
        data["models"]["tiers"][0]["api_base"] = server.url
        config = write(tmp_path, yaml.safe_dump(data))
        env = {
            "ANSWERDESK_CONFIG": str(config),
            "OPENAI_API_KEY": "sk-test",
            "ANSWERDESK_DATA_DIR": str(demo_settings.data_dir),
        }
        done = run(
            tmp_path, "ask", "How long does a guest Wi-Fi pass last?", "--as", JORDAN, env=env
        )
        assert done.returncode == 0, done.stderr
        assert "[1] " in done.stdout and "answer · fast" in done.stdout
        [request] = server.requests_for("gpt-4o-mini")
        assert request["_headers"]["authorization"] == "Bearer sk-test"
        assert request["max_tokens"] == 500


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ("slack:\n  signing_secret: s3cr3t-value\n", "set SLACK_SIGNING_SECRET instead"),
        ("slack:\n  bot_token: s3cr3t-value\n", "set SLACK_BOT_TOKEN instead"),
        ("slack:\n  app_token: s3cr3t-value\n", "set SLACK_APP_TOKEN instead"),
        ("admin_token: s3cr3t-value\n", "set ANSWERDESK_ADMIN_TOKEN instead"),
        (
            "models:\n  tiers:\n    - name: fast\n      model: openai/x\n"
            "      api_key: s3cr3t-value\n",
            "(models.tiers.0.api_key_env: OPENAI_API_KEY)",
        ),
        ("embeddings:\n  api_key: s3cr3t-value\n", "(embeddings.api_key_env: OPENAI_API_KEY)"),
    ],
)
def test_secrets_in_the_file_are_refused_naming_the_variable(
    tmp_path: Path, text: str, variable: str
) -> None:
    config = write(tmp_path, text)
    for args in (("config", "check"), ("search", "x", "--as", "a@b.io")):
        done = run(tmp_path, *args, env={"ANSWERDESK_CONFIG": str(config)})
        assert_usage_error(done, "secrets are read only from the environment", variable)
        assert "s3cr3t-value" not in done.stdout + done.stderr
    assert not (tmp_path / "var").exists()  # nothing written


def test_every_problem_is_reported_one_line_each(tmp_path: Path) -> None:
    config = write(tmp_path, "retrieval:\n  top_k: 0\n  hybrid: maybe\nnonsense: 1\n")
    done = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(config)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 3
    for key in ("retrieval.top_k", "retrieval.hybrid", "nonsense"):
        assert any(key in line for line in lines), (key, lines)


def test_config_check_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "var"
    done = run(tmp_path, "config", "check", env={"ANSWERDESK_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    assert "not there yet: serve creates it" in done.stdout
    assert not (tmp_path / "fresh").exists()


def test_environment_overrides_and_slack_modes(tmp_path: Path) -> None:
    env = {
        "ANSWERDESK_RETRIEVAL__TOP_K": "9",
        "SLACK_SIGNING_SECRET": "sign-value",
        "SLACK_BOT_TOKEN": "xoxb-value",
    }
    report = json.loads(run(tmp_path, "config", "check", "--json", env=env).stdout)
    assert report["effective"]["retrieval"]["top_k"] == 9
    [slack] = [c for c in report["checks"] if c["name"] == "slack"]
    assert slack["status"] == "ok" and "one workspace over HTTP events" in slack["detail"]
    assert report["effective"]["slack"]["bot_token"] == "**********"
    # An OAuth client without its secret is a problem; so is Socket Mode without an app token.
    for broken, needle in (
        ({"SLACK_CLIENT_ID": "1.2", "SLACK_BOT_TOKEN": ""}, "SLACK_CLIENT_SECRET is missing"),
        ({"ANSWERDESK_SLACK__SOCKET_MODE": "true"}, "SLACK_APP_TOKEN is not set"),
    ):
        done = run(tmp_path, "config", "check", env={**env, **broken})
        assert done.returncode == 2
        assert needle in done.stderr
        assert "xoxb-value" not in done.stdout + done.stderr


@pytest.mark.postgres
def test_database_and_index_reachability(tmp_path: Path, postgres_url: str) -> None:
    report = json.loads(
        run(tmp_path, "config", "check", "--json", env={"DATABASE_URL": postgres_url}).stdout
    )
    [database] = [c for c in report["checks"] if c["name"] == "database"]
    assert database["status"] == "ok" and "empty (serve migrates it)" in database["detail"]
    down = f"postgresql://nobody:pw-123@127.0.0.1:{unused_port()}/none"
    env = {"DATABASE_URL": down, "CHROMA_URL": f"http://127.0.0.1:{unused_port()}"}
    done = run(tmp_path, "config", "check", env=env)
    assert done.returncode == 2
    problems = done.stderr.strip().splitlines()
    assert [p.split(":")[0] for p in problems] == ["database", "index"]
    assert "pw-123" not in done.stdout + done.stderr  # the password is masked in the URL


def test_answer_settings_from_the_file_and_the_environment(demo_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Settings the answer-flow tests build in code, set the way operators set them."""
    config = write(
        tmp_path,
        "cache: {enabled: false}\n"
        "policy:\n  prohibited_topics:\n    - name: salaries\n      patterns: [salary]\n"
        "      action: refuse\n      message: I can't discuss salaries here.\n",
    )
    env = {"ANSWERDESK_CONFIG": str(config), "ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)}
    wifi = "How long does a guest Wi-Fi pass last?"
    questions = tmp_path / "q.jsonl"
    lines = [{"question": wifi, "as": JORDAN}] * 2 + [
        {"question": "What is the salary for level 3?", "as": JORDAN}
    ]
    questions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = run(tmp_path, "ask", "--file", str(questions), env=env)
    assert done.returncode == 0, done.stderr
    first, second, topic = (json.loads(line) for line in done.stdout.splitlines())
    assert first["cache"]["status"] == second["cache"]["status"] == "bypass"  # cache off
    assert (topic["mode"], topic["text"]) == ("refused", "I can't discuss salaries here.")

    strict = {**env, "ANSWERDESK_GATE__MIN_SCORE": "0.99", "ANSWERDESK_TRACING__REDACTION": "all"}
    done = run(tmp_path, "ask", wifi, "--as", JORDAN, "--json", env=strict)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["mode"] == "clarify"  # nothing scores 0.99
    trace = json.loads(
        run(tmp_path, "trace", "show", answer["request_id"], "--json", env=env).stdout
    )
    assert "Wi-Fi" not in json.dumps(trace)  # redaction "all": no message text in the trace


def test_streaming_and_assistant_settings_load_and_bad_ones_are_named(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "slack:\n  streaming: false\n  stream_max_appends: 4\n"
        "  assistant:\n    suggested_prompts: ['How do I reset my Okta password?']\n",
    )
    env = {"ANSWERDESK_CONFIG": str(config), "ANSWERDESK_SLACK__STREAM_INTERVAL_S": "2.5"}
    report = json.loads(run(tmp_path, "config", "check", "--json", env=env).stdout)
    slack = report["effective"]["slack"]
    assert (slack["streaming"], slack["stream_max_appends"], slack["stream_interval_s"]) == (
        False,
        4,
        2.5,
    )
    assert slack["assistant"]["suggested_prompts"] == ["How do I reset my Okta password?"]
    assert slack["assistant"]["status"] is True  # the default
    too_fast = write(tmp_path, "slack:\n  stream_interval_s: 0.05\n", "fast.yaml")
    done = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(too_fast)})
    assert_usage_error(done, "slack.stream_interval_s")
    prompts = "\n".join(f"      - question {n}?" for n in range(5))
    too_many = write(
        tmp_path, f"slack:\n  assistant:\n    suggested_prompts:\n{prompts}\n", "p.yaml"
    )
    done = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(too_many)})
    assert_usage_error(done, "slack.assistant.suggested_prompts")
