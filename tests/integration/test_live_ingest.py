"""Documents ingested while the service runs are answered from at once: in the embedded
setup (the CLI hands its work to the service that owns the index) and with a Chroma server
and PostgreSQL shared by two service processes. Real processes, real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import chroma_server, http, serve

JORDAN = "jordan@example.com"
DIRECTORY = "users:\n  - email: jordan@example.com\n    name: Jordan\n    groups: [engineering]\n"
KAYAK = "# Kayak club\n\nThe kayak club meets every Thursday at the Portland boathouse at 6 pm.\n"
QUESTION = "When does the kayak club meet?"
HR_ONLY = 'default: [public]\nrules:\n  - match: "kayak.md"\n    allow: ["group:hr"]\n'


def cli(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def ask_cli(env: dict, email: str = JORDAN) -> dict:
    done = cli(env, "ask", QUESTION, "--as", email, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def cites_kayak(answer: dict) -> bool:
    return any(c["source"] == "kayak.md" for c in answer["citations"])


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "handbook.md").write_text(
        "# Handbook\n\nThe office opens at 8 am and closes at 6 pm on weekdays.\n"
    )
    (tmp_path / "users.yaml").write_text(DIRECTORY)
    (tmp_path / "hr-only.yaml").write_text(HR_ONLY)
    return root


def test_embedded_ingest_is_handed_to_the_running_service(corpus: Path, tmp_path: Path) -> None:
    env = {"ANSWERDESK_DATA_DIR": str(tmp_path / "var")}
    assert cli(env, "directory", "import", str(tmp_path / "users.yaml")).returncode == 0
    assert cli(env, "ingest", str(corpus)).returncode == 0
    with serve(env):
        (corpus / "kayak.md").write_text(KAYAK)
        started = time.monotonic()
        done = cli(env, "ingest", str(corpus), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["added"] == 1
        first = ask_cli(env)
        assert cites_kayak(first), first
        assert time.monotonic() - started < 60
        again = ask_cli(env)
        assert again["cache"]["status"] == "hit" and cites_kayak(again)
        # Restricted after a leak: the user loses it at once, cache included.
        done = cli(env, "ingest", str(corpus), "--acl-file", str(tmp_path / "hr-only.yaml"))
        assert done.returncode == 0, done.stderr
        after = ask_cli(env)
        assert not cites_kayak(after)
        assert after["cache"]["status"] != "hit"
        # Re-indexing would pull the index from under the service: refused, one line.
        refused = cli(env, "ingest", str(corpus), "--reindex")
        assert refused.returncode == 2 and "service stopped" in refused.stderr
    # With the service gone, the CLI works directly again.
    assert not cites_kayak(ask_cli(env))


def test_ingest_and_serve_started_together_on_a_fresh_data_dir(
    corpus: Path, tmp_path: Path
) -> None:
    env = {"ANSWERDESK_DATA_DIR": str(tmp_path / "var")}
    (corpus / "kayak.md").write_text(KAYAK)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "bot", "ingest", str(corpus), "--json"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with serve(env):
        out, err = ingest.communicate(timeout=600)
        assert ingest.returncode == 0, err
        assert json.loads(out)["added"] == 2
        assert cites_kayak(ask_cli(env, "someone@example.com"))


@pytest.mark.postgres
def test_chroma_server_and_postgres_with_two_services(
    corpus: Path, tmp_path: Path, postgres_url: str
) -> None:
    with chroma_server(tmp_path / "chroma") as chroma_url:
        env = {
            "ANSWERDESK_DATA_DIR": str(tmp_path / "var"),
            "DATABASE_URL": postgres_url,
            "CHROMA_URL": chroma_url,
            "ANSWERDESK_ADMIN_TOKEN": "test-admin-token",
        }
        assert cli(env, "directory", "import", str(tmp_path / "users.yaml")).returncode == 0
        assert cli(env, "ingest", str(corpus)).returncode == 0
        with serve(env) as one, serve(env) as two:
            (corpus / "kayak.md").write_text(KAYAK)
            done = cli(env, "ingest", str(corpus), "--json")  # any process may ingest
            assert done.returncode == 0, done.stderr
            ask = {"op": "ask", "params": {"questions": [{"text": QUESTION, "email": JORDAN}]}}
            for url in (one, two):
                status, body = http(f"{url}/admin/run", ask, "test-admin-token")
                assert status == 200, body
                assert cites_kayak(body["result"][0])
            assert http(f"{one}/admin/run", ask, "wrong-token")[0] == 401
            done = cli(env, "ingest", str(corpus), "--acl-file", str(tmp_path / "hr-only.yaml"))
            assert done.returncode == 0, done.stderr
            statuses = []
            for url in (one, two):
                status, body = http(f"{url}/admin/run", ask, "test-admin-token")
                assert status == 200, body
                assert not cites_kayak(body["result"][0])
                statuses.append(body["result"][0]["cache"]["status"])
            # The entry built from the restricted document is never served; the second
            # service may reuse the fresh answer the first one just made without it.
            assert statuses[0] != "hit"
