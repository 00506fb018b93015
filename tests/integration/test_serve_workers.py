"""`answerdesk serve --workers N` as operators run it: N processes sharing the port on the
PostgreSQL + Chroma server setup, each answering; refused, with the reason, on the embedded
setup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.cli import assert_usage_error, run
from tests.support.processes import chroma_server, free_port, http

TOKEN = "workers-admin-token"
EMAIL = "jordan.kim@harborlight.example"


def test_workers_are_refused_on_the_embedded_setup(tmp_path: Path) -> None:
    done = run(tmp_path, "serve", "--workers", "2", "--port", str(free_port()))
    assert_usage_error(done, "--workers needs the PostgreSQL + Chroma server setup")
    assert not (tmp_path / "var" / "answerdesk.db").exists()  # nothing was started
    assert_usage_error(run(tmp_path, "serve", "--workers", "0"), "--workers", "at least 1")


def test_workers_share_the_port_and_each_answers(tmp_path: Path, postgres_url: str) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "wifi.md").write_text(
        "# Guest Wi-Fi\n\nA guest Wi-Fi pass lasts 24 hours and is issued at the front desk.\n"
    )
    (tmp_path / "users.yaml").write_text(f"users:\n  - email: {EMAIL}\n    groups: [staff]\n")
    with chroma_server(tmp_path / "chroma") as chroma_url:
        env = {
            "ANSWERDESK_DATA_DIR": str(tmp_path / "var"),
            "DATABASE_URL": postgres_url,
            "CHROMA_URL": chroma_url,
            "ANSWERDESK_ADMIN_TOKEN": TOKEN,
        }
        imported = run(tmp_path, "directory", "import", str(tmp_path / "users.yaml"), env=env)
        assert imported.returncode == 0, imported.stderr
        ingested = run(tmp_path, "ingest", str(corpus), env=env)
        assert ingested.returncode == 0, ingested.stderr
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--workers", "2", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Each worker says it is serving, with its own pid.
            lines: list[str] = []
            while len(lines) < 2:
                line = process.stdout.readline()
                assert line, "serve stopped before both workers were serving"
                if "is serving on" in line:
                    lines.append(line)
            pids = {line.rsplit("pid ", 1)[1].rstrip(")\n") for line in lines}
            assert len(pids) == 2 and str(process.pid) not in pids
            url = f"http://127.0.0.1:{port}"
            seen = set()
            for _ in range(60):  # a new connection each time: the kernel spreads them
                status, body = http(f"{url}/readyz")
                assert status == 200, body
                seen.add(body["checks"]["worker"])
                if len(seen) == 2:
                    break
            assert {w.split(" (")[0] for w in seen} == {"1 of 2", "2 of 2"}
            # Whichever worker takes it answers from the shared index and database.
            ask = {"op": "ask", "params": {"questions": [{"text": "How long does a guest "
                   "Wi-Fi pass last?", "email": EMAIL}]}}  # fmt: skip
            for _ in range(4):
                status, body = http(f"{url}/admin/run", ask, TOKEN)
                assert status == 200, body
                assert "24 hours" in body["result"][0]["text"]
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err[-2000:]
        for pid in pids:  # every worker stopped (and was reaped) with the service
            assert not Path(f"/proc/{pid}").exists()
        request = urllib.request.Request(f"{url}/healthz")
        try:
            urllib.request.urlopen(request, timeout=2)
            raise AssertionError("something still listens on the port")
        except OSError:
            pass
