"""`answerdesk ask --stream` as a user runs it: a subprocess whose output is read as it
comes, against a model server that streams; in the CLI's own process and handed to a
running service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.support.cli import assert_usage_error, run
from tests.support.model_server import ModelServer
from tests.support.processes import serve

QUESTION = "How long does a guest Wi-Fi pass last?"
JORDAN = "jordan.kim@harborlight.example"


@pytest.fixture
def streaming_env(demo_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    with ModelServer() as server:
        server.set_pacing("fast", first_token_ms=200, tokens_per_s=20)
        config = tmp_path / "answerdesk.yaml"
        config.write_text(
            "cache:\n  enabled: false\n"
            "models:\n  tiers:\n    - name: fast\n      model: openai/fast\n"
            f"      api_base: {server.url}\n      api_key_env: TEST_KEY\n"
        )
        yield (
            server,
            {
                "ANSWERDESK_DATA_DIR": str(demo_settings.data_dir),
                "ANSWERDESK_CONFIG": str(config),
                "TEST_KEY": "k",
            },
        )


def ask_streaming(env: dict, *extra: str) -> tuple[str, str, float, float]:
    """Run `ask --stream`, reading stdout as it is written: (stdout, stderr, seconds until
    the first streamed text, seconds until the last line)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", QUESTION, "--as", JORDAN, "--stream", *extra],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    started = time.monotonic()
    out = b""
    first_text = None
    while chunk := os.read(process.stdout.fileno(), 4096):
        out += chunk
        if first_text is None and b"According" in out:
            first_text = time.monotonic() - started
    done_at = time.monotonic() - started
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    assert first_text is not None, out.decode()
    return out.decode(), err.decode(), first_text, done_at


def without_request_id(text: str) -> str:
    return text.rsplit(" · request ", 1)[0]


def test_ask_stream_prints_the_text_as_it_comes_then_the_same_answer_as_ask(
    streaming_env, tmp_path: Path
) -> None:
    server, env = streaming_env
    out, err, first_text, done_at = ask_streaming(env)
    plain = run(tmp_path, "ask", QUESTION, "--as", JORDAN, env=env)
    assert plain.returncode == 0, plain.stderr
    draft, _, final = out.partition("\n\n")
    assert draft.startswith("According to the sources")
    # After the draft: exactly what `ask` prints (request ids differ).
    assert without_request_id(final.strip()) == without_request_id(plain.stdout.strip())
    assert draft.strip() == plain.stdout.splitlines()[0]  # nothing to revise here
    # The words arrived while the model was still writing (20 tokens/s: over a second).
    assert done_at - first_text > 0.5
    assert "… Searching the documents…" in err and "… Writing the answer…" in err
    assert [r.get("stream") for r in server.requests_for("fast")] == [True, None]


def test_ask_stream_json_and_a_revised_draft(streaming_env, tmp_path: Path) -> None:
    server, env = streaming_env
    server.script("fast", "cut:3", "answer")
    config = Path(env["ANSWERDESK_CONFIG"])
    config.write_text(
        config.read_text()
        + f"    - name: strong\n      model: openai/strong\n      api_base: {server.url}\n"
        "      api_key_env: TEST_KEY\n"
    )
    out, _, _, _ = ask_streaming(env, "--json")
    events = [json.loads(line) for line in out.splitlines()]
    *steps, answer = events
    assert steps[0] == {"status": "Searching the documents…"}
    assert {"restart": True} in steps  # the cut draft was dropped
    after = steps[steps.index({"restart": True}) + 1 :]
    assert "".join(s.get("delta", "") for s in after) == answer["text"]
    assert [n["code"] for n in answer["notices"]] == ["fallback_tier", "revised_after_check"]

    done = run(tmp_path, "ask", "--file", str(config), "--stream", env=env)
    assert_usage_error(done, "--stream answers one QUESTION")


def test_ask_stream_handed_to_a_running_service(streaming_env, tmp_path: Path) -> None:
    server, env = streaming_env
    with serve(env):  # it holds the data dir: the command hands its work over
        out, err, first_text, done_at = ask_streaming(env)
    draft, _, final = out.partition("\n\n")
    assert draft.startswith("According to the sources")
    assert final.startswith(draft.strip()) and " · request " in final
    assert done_at - first_text > 0.5  # streamed through the service, not after it
    assert "… Writing the answer…" in err
    assert [r.get("stream") for r in server.requests_for("fast")] == [True]
