"""Benchmarks cannot rot: each runs end to end with `--smoke` (tiny sizes). Only that it
completes and prints its figures is checked, never the figures (shared, noisy machines)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.cli import REPO

FIGURES = {
    "retrieval.py": ["top-5 with permission filter", "p95"],
    "pipeline.py": ["CPU floor", "== concurrency 2", "overhead", "p95", "/ CPU floor"],
    "cache.py": ["false-hit rate", "permission violations: 0", "lookup latency"],
    "slack_ack.py": ["ack latency", "p99", "duplicates: 0"],
    "observability.py": ["prometheus sink", "/metrics render", "otel spans, worker"],
    "governance.py": ["exact words (before)", "word forms + examples", "recall", "precision"],
    "streaming.py": ["first visible text", "final answer", "calls per answer", "over it: 0"],
    "load.py": [
        "ack latency",
        "p99",
        "first visible text p95",
        "answer p95",
        "throughput",
        "errors: 0",
        "duplicates: 0",
        "highest sustained rate",
        "RSS: start",
    ],
    "model_client.py": ["whole:", "streamed:", "ms CPU per call"],
    "releases.py": ["release state read", "build + warm-up", "answered with it", "switch"],
}


def test_every_benchmark_is_covered() -> None:
    scripts = {p.name for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(FIGURES)


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_benchmark_smoke_run(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for needle in FIGURES[script]:
        assert needle in done.stdout, (needle, done.stdout[-2000:])
