"""The command line as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DEMO
from tests.support.cli import assert_usage_error, run


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = run(tmp_path, "--help")
    assert done.returncode == 0
    for command in ("serve", "ingest", "directory", "search", "db"):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("config", "env", "needles"),
    [
        ("retrieval:\n  top_k: 0\n", {}, ["retrieval.top_k"]),
        ("nonsense: 1\n", {}, ["nonsense"]),
        (None, {"ANSWERDESK_CONFIG": "/no/such.yaml"}, ["config file not found"]),
        ("", {"ANSWERDESK_SERVER__PORT": "http"}, ["server.port"]),
        ("slack:\n  bot_token: xoxb-secret\n", {}, ["secrets are read only"]),
    ],
)
def test_bad_configuration(tmp_path: Path, config: str | None, env: dict, needles: list) -> None:
    if config is not None:
        path = tmp_path / "c.yaml"
        path.write_text(config)
        env = {"ANSWERDESK_CONFIG": str(path), **env}
    done = run(tmp_path, "search", "x", "--as", "a@b.io", env=env)
    assert_usage_error(done, *needles)
    assert "xoxb-secret" not in done.stderr


def test_bad_arguments_and_missing_files(tmp_path: Path) -> None:
    assert_usage_error(run(tmp_path, "ingest"), "PATH")
    assert_usage_error(run(tmp_path, "ingest", str(tmp_path / "nope")), "no such file")
    assert_usage_error(run(tmp_path, "directory", "import", str(tmp_path / "x.yaml")), "not found")
    assert_usage_error(run(tmp_path, "search", "--as", "a@b.io"), "QUERY or --file")
    assert_usage_error(run(tmp_path, "search", "q", "--as", "a@b.io", "-k", "0"), "-k")
    assert_usage_error(run(tmp_path, "frobnicate"), "invalid choice")


def test_bad_acl_file_ingests_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n\nSome text.\n")
    acl = tmp_path / "acl.yaml"
    acl.write_text("rules:\n  - match: '*'\n    allow: ['role:admin']\n")
    assert_usage_error(run(tmp_path, "ingest", str(corpus), "--acl-file", str(acl)), "role:admin")
    assert not (tmp_path / "var").exists()


def test_ingest_reports_bad_files_and_exits_1(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Good\n\nThe canteen opens at eight.\n")
    (corpus / "bad.pdf").write_bytes(b"%PDF-1.4 truncated")
    done = run(tmp_path, "ingest", str(corpus), "--json")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["added"] == 1
    assert summary["failed"][0]["path"] == "bad.pdf"
    assert "bad.pdf" in done.stderr
    again = run(tmp_path, "ingest", str(corpus), "--json")
    assert json.loads(again.stdout)["unchanged"] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_demo_answers_health_and_readiness(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "ANSWERDESK_DATA_DIR": str(tmp_path / "var")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.5)
        assert (status, body) == (200, {"status": "ok"})
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and body["status"] == "ready"
        assert int(body["checks"]["chunks_indexed"]) > 50
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out
    # The demo directory came with it.
    shown = run(tmp_path, "directory", "show", "priya.raman@harborlight.example", "--json")
    assert "group:hr" in json.loads(shown.stdout)["principals"]
    assert len(list(DEMO.joinpath("corpus").rglob("*.*"))) >= 10


def test_ask_without_a_model_and_with_a_configured_tier(demo_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.model_server import ModelServer

    env = {"ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)}
    question = "How long does a guest Wi-Fi pass last?"
    done = run(
        tmp_path, "ask", question, "--as", "jordan.kim@harborlight.example", "--json", env=env
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) >= {
        "request_id",
        "mode",
        "text",
        "citations",
        "notices",
        "tier",
        "model",
        "cost_usd",
        "latency_ms",
        "principals",
    }
    assert (answer["mode"], answer["tier"]) == ("answer", "extractive")
    assert answer["citations"][0]["source"] == "it/wifi-guests.html"

    shown = run(tmp_path, "trace", "show", answer["request_id"], "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["request_id"] == answer["request_id"]
    assert_usage_error(run(tmp_path, "trace", "show", "nope", env=env), "no trace")

    with ModelServer() as server:
        config = tmp_path / "models.yaml"
        config.write_text(
            "models:\n  tiers:\n    - name: fast\n      model: openai/fast\n"
            f"      api_base: {server.url}\n      api_key_env: TEST_KEY\n"
        )
        questions = tmp_path / "q.jsonl"
        questions.write_text(
            json.dumps({"question": question, "as": "jordan.kim@harborlight.example"})
            + "\n"
            + json.dumps(
                {
                    "question": question,
                    "as": "priya.raman@harborlight.example",
                    "audience": "public",
                }
            )
            + "\n"
        )
        done = run(
            tmp_path,
            "ask",
            "--file",
            str(questions),
            env={**env, "ANSWERDESK_CONFIG": str(config), "TEST_KEY": "k"},
        )
        assert done.returncode == 0, done.stderr
        answers = [json.loads(line) for line in done.stdout.splitlines()]
        assert [a["tier"] for a in answers] == ["fast", "fast"]
        assert all(a["mode"] == "answer" and a["citations"] for a in answers)
        # The first answer came from the model; the second, the same public question, from
        # the cache (the extractive answer cached earlier belongs to another release).
        assert [a["cache"]["status"] for a in answers] == ["miss", "hit"]
        assert len(server.requests_for("fast")) == 1


def test_ask_bad_input(tmp_path: Path) -> None:
    assert_usage_error(
        run(tmp_path, "ask", "hi", "--as", "a@b.io", "--audience", "team"), "audience"
    )
    assert_usage_error(run(tmp_path, "ask", "hi"), "--as")
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "x", "as": "a@b.io"}\nnot json\n')
    assert_usage_error(run(tmp_path, "ask", "--file", str(bad)), "line 2")


def test_cache_and_tickets_commands(demo_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)}
    jordan = "jordan.kim@harborlight.example"
    for _ in range(2):
        done = run(
            tmp_path,
            "ask",
            "How long does a guest Wi-Fi pass last?",
            "--as",
            jordan,
            "--json",
            env=env,
        )
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cache"]["status"] == "hit"
    stats = json.loads(run(tmp_path, "cache", "stats", "--json", env=env).stdout)
    assert stats["entries"] == 1 and stats["hits_served"] == 1
    handed = run(
        tmp_path, "ask", "Can I talk to a human please?", "--as", jordan, "--json", env=env
    )
    ticket = json.loads(handed.stdout)["ticket"]
    assert ticket["provider"] == "builtin"
    listed = json.loads(run(tmp_path, "tickets", "list", "--json", env=env).stdout)
    assert [t["id"] for t in listed] == [ticket["id"]]
    assert listed[0]["asker"] == jordan and listed[0]["status"] == "open"
    cleared = json.loads(run(tmp_path, "cache", "clear", "--json", env=env).stdout)
    assert cleared == {"removed": 1}
    assert json.loads(run(tmp_path, "cache", "stats", "--json", env=env).stdout)["entries"] == 0
