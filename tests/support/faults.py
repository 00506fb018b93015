"""Real processes to break on purpose, for the fault-injection and replica suites: a private
PostgreSQL (initdb + pg_ctl on a free port, never the shared server), a Chroma server that
can be killed and brought back on the same port and data, `answerdesk serve` with a handle
to SIGKILL it, and a Slack workspace that sends signed events and reads the thread replies
out of the Slack Web API double."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.processes import free_port
from tests.support.slack_api import SlackApiDouble, app_mention, event_payload, signed_headers

SECRET = "fault-signing-secret"
BOT_TOKEN = "xoxb-test"


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    """Poll until `condition()` is truthy (bounded: a hang fails the test, it never waits
    forever); returns its value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, dict]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: its tools run as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PrivatePostgres:
    """A PostgreSQL server of the test's own, in a temp dir on a free loopback port, which
    the test may stop and restart (the shared server on 5432 is never touched)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        assert found, "PostgreSQL's server binaries are under /usr/lib/postgresql/*/bin"
        self._bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="answerdesk-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.dir / "data"),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._ctl("-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ChromaProcess:
    """`chroma run` (the chromadb package's server) on a fixed port and data dir, so a
    killed server comes back with the same address and data."""

    def __init__(self, path: Path) -> None:
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
        assert chroma, "the chroma CLI comes with the chromadb package"
        self._command = [chroma, "run", "--path", str(path), "--port", str(free_port())]
        self.url = f"http://127.0.0.1:{self._command[-1]}"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self._up, "chroma came up", 120)

    def _up(self) -> bool:
        assert self._process is not None and self._process.poll() is None, "chroma exited"
        try:
            return get(f"{self.url}/api/v2/heartbeat", timeout=2)[0] == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(30)
            self._process = None


class Served:
    """`answerdesk serve` in a subprocess (stderr kept in a file for the failure message)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=self._log,
        )
        self._log_path = log

    def ready(self) -> Served:
        """Wait until it serves (two started together load their models in parallel)."""
        wait_until(self._up, f"serve came up (log: {self._log_path})", 300)
        return self

    def _up(self) -> bool:
        assert self.process.poll() is None, f"serve exited: {self.log_tail()}"
        try:
            return get(f"{self.url}/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye (a crashed replica)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


class Workspace:
    """People asking in Slack: signed events into a replica, and the bot's replies read
    from the Slack double, thread by thread."""

    def __init__(self, slack: SlackApiDouble, channel: str = "C0GENERAL") -> None:
        self.slack = slack
        self.channel = channel
        self._ts = int(time.time()) * 1000

    def question(self, text: str) -> tuple[str, dict]:
        """A new @mention: (its ts, the signed event's payload)."""
        self._ts += 1
        ts = f"{self._ts // 1000}.{self._ts % 1000:06d}"
        event = app_mention(f"<@UBOT> {text}", user="U0ASKER01", channel=self.channel, ts=ts)
        return ts, event_payload(event, event_id=f"Ev{ts.replace('.', '')}")

    def send(self, url: str, payload: dict, retry: int | None = None) -> int:
        body = json.dumps(payload).encode()
        headers = signed_headers(SECRET, body, retry_num=retry)
        return post(f"{url}/slack/events", body, headers)

    def ask(self, url: str, text: str) -> str:
        ts, payload = self.question(text)
        assert self.send(url, payload) == 200
        return ts

    def replies(self, thread: str) -> list[dict]:
        return [m for m in self.slack.messages() if m["thread_ts"] == thread]

    def answer(self, thread: str, seconds: float = 60) -> dict:
        """The thread's one reply once it is finished (buttons with its request id)."""

        def finished() -> dict | None:
            found = [m for m in self.replies(thread) if request_id(m)]
            return found[0] if found else None

        try:
            return wait_until(finished, f"an answer in thread {thread}", seconds)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the thread holds {self.replies(thread)}") from None


def request_id(message: dict) -> str | None:
    """The request id of a finished answer, from its footer (None: not one)."""
    for block in message.get("blocks") or []:
        if isinstance(block, dict) and block.get("block_id") == "answerdesk_footer":
            found = re.search(r"request `([0-9a-f]+)`", json.dumps(block))
            if found:
                return found.group(1)
    return button_request_id(message)


def button_request_id(message: dict) -> str | None:
    """The request id an answer's buttons carry."""
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) if isinstance(block, dict) else []:
            if isinstance(element, dict) and element.get("type") == "button":
                value = str(element.get("value", ""))
                return value.split(":")[-1] if ":" in value else value
            if isinstance(element, dict) and element.get("type") == "feedback_buttons":
                positive = element.get("positive_button", {}).get("value", "")
                return str(positive).split(":")[-1]
    return None


def notice_codes(message: dict, codes: tuple[str, ...]) -> set[str]:
    """Which of `codes`' sentences the message shows (notices render as their text)."""
    from core.answering.notices import MESSAGES
    from core.answering.types import NoticeCode

    shown = json.dumps(message)
    return {code for code in codes if MESSAGES[NoticeCode(code)][:40] in shown}


DOCUMENTS = {
    "kayak-club.md": "# Kayak club\n\nThe kayak club meets every Thursday at the Portland "
    "boathouse at 6 pm. Paddles and life jackets are provided by the club.\n",
    "guest-wifi.md": "# Guest Wi-Fi\n\nA guest Wi-Fi pass lasts 24 hours. Reception prints "
    "the pass; the network is called Harbor-Guest.\n",
    "parking.md": "# Parking\n\nStaff park in level 2 of the Pier garage. A parking permit "
    "costs 40 dollars a month and is renewed in January.\n",
    "lockers.md": "# Lockers\n\nLockers on the third floor are assigned by the facilities "
    "desk. A lost locker key is replaced for 15 dollars.\n",
    "library.md": "# Library\n\nThe company library lends books for three weeks. Return "
    "books to the cart next to the coffee bar.\n",
    "bikes.md": "# Bikes\n\nThe bike room is in the basement, open from 6 am to 10 pm. "
    "E-bikes charge at the sockets by the door.\n",
}
QUESTIONS = {
    "kayak-club.md": "When does the kayak club meet?",
    "guest-wifi.md": "How long does a guest Wi-Fi pass last?",
    "parking.md": "How much does a parking permit cost?",
    "lockers.md": "What does a lost locker key cost to replace?",
    "library.md": "How long can I borrow a library book?",
    "bikes.md": "When is the bike room open?",
}


def write_corpus(path: Path, names: tuple[str, ...] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in names or tuple(DOCUMENTS):
        (path / name).write_text(DOCUMENTS[name])
    return path


def config_file(path: Path, sections: dict) -> Path:
    """The YAML configuration file `serve` reads (ANSWERDESK_CONFIG): JSON is YAML."""
    path.write_text(json.dumps(sections, indent=2))
    return path


def admin(url: str, op: str, params: dict, token: str) -> dict:
    body = json.dumps({"op": op, "params": params}).encode()
    request = urllib.request.Request(
        f"{url}/admin/run",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def click(workspace: Workspace, url: str, action: str, answer: dict, user: str) -> int:
    """A button on a posted answer, pressed by `user` (signed interactivity payload)."""
    from tests.support.slack_api import block_action

    rid = request_id(answer)
    assert rid, answer
    body = block_action(
        action,
        rid,
        user=user,
        channel=answer["channel"],
        message_ts=answer["ts"],
        thread_ts=answer["thread_ts"],
    )
    content = "application/x-www-form-urlencoded"
    headers = signed_headers(SECRET, body, content_type=content)
    return post(f"{url}/slack/events", body, headers)
