"""Real processes for multi-replica tests: `answerdesk serve` on a free port, and a Chroma
server (`chroma run`, from the chromadb package) for the scaled-out setup."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(url: str, process: subprocess.Popen, what: str, seconds: float = 300) -> None:
    """Until `url` answers 200; fails at once (with its stderr, when piped) if `process`
    exits first."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            output = process.stderr.read()[-2000:] if process.stderr else ""
            raise AssertionError(f"{what} exited {process.returncode}: {output}")
        try:
            if http(url)[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{what} did not come up"
        time.sleep(0.3)


def stop(process: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    """`answerdesk serve` with `env`; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/healthz", process, "serve")
        yield url
    finally:
        stop(process)


@contextmanager
def chroma_server(path: Path) -> Iterator[str]:
    """A Chroma server storing under `path`; yields its URL (for CHROMA_URL)."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert chroma, "the chroma CLI comes with the chromadb package"
    port = free_port()
    process = subprocess.Popen(
        [chroma, "run", "--path", str(path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/api/v2/heartbeat", process, "chroma", 120)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process, 30)
