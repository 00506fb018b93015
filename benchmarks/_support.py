"""What the benchmark scripts share: an offline environment, percentiles, and a model
server double in its own process (so it takes no CPU or GIL from what is measured)."""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bot" / "demo"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_MODEL_SERVER = """
import sys, time
from tests.support.model_server import ModelServer
server = ModelServer().start()
if sys.argv[1]:
    server.set_default("fast", sys.argv[1])
server.set_pacing("fast", float(sys.argv[2]), float(sys.argv[3]))
print(server.url, flush=True)
while True:
    time.sleep(3600)
"""


def parse_args(parser: argparse.ArgumentParser, smoke: dict[str, Any]) -> argparse.Namespace:
    """Parse the command line. `--smoke` replaces the sizes with tiny ones (`smoke`): the
    script runs end to end in seconds, which `make test` checks so benchmarks cannot rot;
    its figures mean nothing."""
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only checks it runs")
    args = parser.parse_args()
    if args.smoke:
        for key, value in smoke.items():
            setattr(args, key, value)
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


@contextmanager
def model_server(
    behaviour: str = "", first_token_ms: float = 0, tokens_per_s: float = 0
) -> Iterator[str]:
    """An OpenAI-compatible server (model `openai/fast`) in a subprocess, answering with
    `behaviour` at that pace (see ModelServer.set_pacing); yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", _MODEL_SERVER, behaviour, str(first_token_ms), str(tokens_per_s)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)
