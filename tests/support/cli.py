"""The command line as a user runs it: `python -m bot` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(
    tmp_path: Path, *args: str, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`answerdesk ARGS` with its data dir under tmp_path (unless env names another)."""
    full_env = {**os.environ, "ANSWERDESK_DATA_DIR": str(tmp_path / "var"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def assert_usage_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]
