"""The operations settings as operators set them: `config check` reports the console, the
metrics, OpenTelemetry and the SLO file; their secrets are refused in the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.console.auth import verify_password
from tests.support.cli import REPO, assert_usage_error, run

SLO = (
    "approved_by: Dana\napproved_on: 2026-11-30\n"
    "objectives:\n  availability: {min: 0.995, owner: sre}\n"
)


def checks(tmp_path: Path, env: dict[str, str]) -> tuple[int, dict[str, dict], str]:
    done = run(tmp_path, "config", "check", "--json", env=env)
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["checks"]}, done.stdout + done.stderr


def test_defaults_report_what_is_off(tmp_path: Path) -> None:
    code, found, _ = checks(tmp_path, {})
    assert code == 0
    assert (
        found["console"]["status"] == "off"
        and "ANSWERDESK_ADMIN_USER" in found["console"]["detail"]
    )
    assert found["metrics"]["status"] == "ok" and "open to anyone" in found["metrics"]["detail"]
    assert found["opentelemetry"]["status"] == "off"
    assert found["slo"]["status"] == "off"


def test_everything_configured(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(SLO)
    (tmp_path / "answerdesk.yaml").write_text(
        f"slo:\n  file: {tmp_path / 'slo.yaml'}\nadmin:\n  secure_cookie: true\n"
    )
    env = {
        "ANSWERDESK_CONFIG": str(tmp_path / "answerdesk.yaml"),
        "ANSWERDESK_ADMIN_USER": "alice",
        "ANSWERDESK_ADMIN_PASSWORD": "pw-value-9876",
        "ANSWERDESK_SESSION_SECRET": "session-secret-5432",
        "ANSWERDESK_METRICS_TOKEN": "metrics-token-1111",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
    }
    code, found, output = checks(tmp_path, env)
    assert code == 0
    assert found["console"]["status"] == "ok"
    assert (
        "login alice from ANSWERDESK_ADMIN_PASSWORD (stored hashed)" in found["console"]["detail"]
    )
    assert "ANSWERDESK_SESSION_SECRET" in found["console"]["detail"]
    assert "ANSWERDESK_METRICS_TOKEN" in found["metrics"]["detail"]
    assert (
        found["opentelemetry"]["detail"]
        == "spans over OTLP (http/protobuf) to http://collector:4318"
    )
    assert (
        found["slo"]["status"] == "ok"
        and "1 objectives, approved by Dana" in found["slo"]["detail"]
    )
    for secret in ("pw-value-9876", "session-secret-5432", "metrics-token-1111"):
        assert secret not in output
    effective = json.loads(run(tmp_path, "config", "check", "--json", env=env).stdout)["effective"]
    assert effective["admin"]["password"] == "**********"
    assert effective["metrics"]["token"] == "**********"


def test_problems(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(SLO.replace("min: 0.995", "min: 2"))
    (tmp_path / "answerdesk.yaml").write_text(f"slo:\n  file: {tmp_path / 'slo.yaml'}\n")
    env = {
        "ANSWERDESK_CONFIG": str(tmp_path / "answerdesk.yaml"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
    }
    done = run(tmp_path, "config", "check", env=env)
    assert done.returncode == 2
    problems = done.stderr.strip().splitlines()
    assert [p.split(":")[0] for p in problems] == ["opentelemetry", "slo"]
    assert "objectives.availability.min" in problems[1]
    # A password hash that is none stops every command, one line naming the variable.
    bad_hash = {"ANSWERDESK_ADMIN_USER": "alice", "ANSWERDESK_ADMIN_PASSWORD_HASH": "not-a-hash"}
    done = run(tmp_path, "config", "check", env=bad_hash)
    assert done.returncode == 2 and "ANSWERDESK_ADMIN_PASSWORD_HASH" in done.stderr
    assert "not-a-hash" not in done.stdout + done.stderr
    assert_usage_error(run(tmp_path, "serve", env=bad_hash), "ANSWERDESK_ADMIN_PASSWORD_HASH")


def test_a_user_without_a_password_is_one_line(tmp_path: Path) -> None:
    done = run(tmp_path, "config", "check", env={"ANSWERDESK_ADMIN_USER": "alice"})
    assert done.returncode == 2
    assert "ANSWERDESK_ADMIN_PASSWORD" in done.stderr
    bad_name = run(
        tmp_path,
        "slo",
        "report",
        env={"ANSWERDESK_ADMIN_USER": "al ice", "ANSWERDESK_ADMIN_PASSWORD": "x" * 10},
    )
    assert_usage_error(bad_name, "admin.user")


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ("admin:\n  password: s3cr3t-value\n", "set ANSWERDESK_ADMIN_PASSWORD instead"),
        ("admin:\n  password_hash: s3cr3t-value\n", "set ANSWERDESK_ADMIN_PASSWORD_HASH instead"),
        ("admin:\n  session_secret: s3cr3t-value\n", "set ANSWERDESK_SESSION_SECRET instead"),
        ("metrics:\n  token: s3cr3t-value\n", "set ANSWERDESK_METRICS_TOKEN instead"),
    ],
)
def test_operations_secrets_in_the_file_are_refused(
    tmp_path: Path, text: str, variable: str
) -> None:
    (tmp_path / "answerdesk.yaml").write_text(text)
    done = run(
        tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(tmp_path / "answerdesk.yaml")}
    )
    assert_usage_error(done, "secrets are read only from the environment", variable)
    assert "s3cr3t-value" not in done.stdout + done.stderr


def hash_password(tmp_path: Path, typed: str) -> subprocess.CompletedProcess[str]:
    """`answerdesk admin hash-password` with the password piped in."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "admin", "hash-password"],
        input=typed,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "ANSWERDESK_DATA_DIR": str(tmp_path / "var")},
        timeout=60,
    )


def test_hash_password_prints_a_usable_hash(tmp_path: Path) -> None:
    done = hash_password(tmp_path, "a long passphrase\n")
    assert done.returncode == 0, done.stderr
    hashed = done.stdout.strip()
    assert hashed.startswith("scrypt$") and "a long passphrase" not in hashed
    assert verify_password("a long passphrase", hashed)
    assert not verify_password("another passphrase", hashed)
    assert_usage_error(hash_password(tmp_path, "short\n"), "at least 8 characters")
    env = {"ANSWERDESK_ADMIN_USER": "alice", "ANSWERDESK_ADMIN_PASSWORD_HASH": hashed}
    _, found, _ = checks(tmp_path, env)
    assert found["console"]["status"] == "ok"
    assert "ANSWERDESK_ADMIN_PASSWORD_HASH" in found["console"]["detail"]
