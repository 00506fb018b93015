"""Two `answerdesk serve` processes sharing PostgreSQL and a Chroma server: a release
activated from the command line reaches both within seconds, without a restart, and so does
the rollback. Each answer's trace names the release that gave it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import chroma_server, http, serve

pytestmark = pytest.mark.postgres

TOKEN = "test-admin-token"
JORDAN = "jordan@example.com"
QUESTION = "When does the kayak club meet?"
REFRESH_S = 1
NO_KAYAKS = """policy:
  prohibited_topics:
    - {name: kayaks, action: refuse, message: Kayak questions go to the club., patterns: [kayak]}
"""
LIBRARY = """name: office
cases:
  - id: opening-hours
    question: When does the office open?
    as: jordan@example.com
    expected_sources: [handbook.md]
    must_include: ["8 am"]
"""


def cli(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def modes(urls: tuple[str, str]) -> list[str]:
    ask = {"op": "ask", "params": {"questions": [{"text": QUESTION, "email": JORDAN}]}}
    out = []
    for url in urls:
        status, body = http(f"{url}/admin/run", ask, TOKEN)
        assert status == 200, body
        out.append(body["result"][0]["mode"])
    return out


def until(urls: tuple[str, str], refused: bool) -> float:
    """Seconds until both services answer (or refuse) the kayak question."""
    started = time.monotonic()
    while True:
        found = modes(urls)
        if all((mode == "refused") == refused for mode in found):
            return time.monotonic() - started
        assert time.monotonic() - started < 30, found
        time.sleep(0.2)


def test_activation_and_rollback_reach_every_replica(tmp_path: Path, postgres_url: str) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "handbook.md").write_text(
        "# Handbook\n\nThe office opens at 8 am and closes at 6 pm on weekdays.\n"
    )
    (corpus / "kayak.md").write_text(
        "# Kayak club\n\nThe kayak club meets every Thursday at the Portland boathouse at 6 pm.\n"
    )
    (tmp_path / "users.yaml").write_text(f"users:\n  - email: {JORDAN}\n    groups: [staff]\n")
    (tmp_path / "library.yaml").write_text(LIBRARY)
    (tmp_path / "kayaks.yaml").write_text(NO_KAYAKS)
    with chroma_server(tmp_path / "chroma") as chroma_url:
        env = {
            "ANSWERDESK_DATA_DIR": str(tmp_path / "var"),
            "DATABASE_URL": postgres_url,
            "CHROMA_URL": chroma_url,
            "ANSWERDESK_ADMIN_TOKEN": TOKEN,
            "ANSWERDESK_RELEASES__REFRESH_S": str(REFRESH_S),
            "ANSWERDESK_RELEASES__GATE_LIBRARY": str(tmp_path / "library.yaml"),
        }
        assert cli(env, "directory", "import", str(tmp_path / "users.yaml")).returncode == 0
        assert cli(env, "ingest", str(corpus)).returncode == 0
        created = cli(
            env,
            "release",
            "create",
            "--from",
            str(tmp_path / "kayaks.yaml"),
            "--note",
            "kayak questions to the club",
            "--json",
        )
        assert created.returncode == 0, created.stderr
        release = json.loads(created.stdout)["id"]
        with serve(env) as one, serve(env) as two:
            assert modes((one, two)) == ["answer", "answer"]
            done = cli(env, "release", "activate", release, "--as", "dana", "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            configured = json.loads(done.stdout)["replaced"]
            # Both replicas switch on their own, within a few refresh periods.
            assert until((one, two), refused=True) < 10 * REFRESH_S
            ask = {"op": "ask", "params": {"questions": [{"text": QUESTION, "email": JORDAN}]}}
            request_id = http(f"{two}/admin/run", ask, TOKEN)[1]["result"][0]["request_id"]
            done = cli(env, "release", "rollback", "--as", "dana")
            assert done.returncode == 0, done.stderr
            assert until((one, two), refused=False) < 10 * REFRESH_S
            later = http(f"{one}/admin/run", ask, TOKEN)[1]["result"][0]["request_id"]
        for rid, expected in ((request_id, release), (later, configured)):
            shown = cli(env, "trace", "show", rid, "--json")
            assert shown.returncode == 0, shown.stderr
            assert json.loads(shown.stdout)["release"] == expected
