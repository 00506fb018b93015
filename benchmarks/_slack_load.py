"""What the Slack load benchmarks share: the Slack Web API double and `answerdesk serve` in
processes of their own, and signed `app_mention` events sent at a steady rate."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from _support import ROOT, free_port

from tests.support.slack_api import app_mention, event_payload, signed_headers

SECRET = "bench-signing-secret"
USER = "U03JKIM8QX"  # jordan.kim in the demo directory
CHANNELS = 400
QUESTIONS = [
    "How long does a guest Wi-Fi pass last?",
    "What portal address do I enter in GlobalProtect?",
    "How many PTO days do I get after 3 years?",
    "What is the hotel limit for a trip to Seattle?",
]
# The double in its own process. Each line read is a question: "messages" (the messages as
# they stand) or "calls" (the chat.* and assistant.* calls since the last time, compactly).
_DOUBLE = """
import json, sys
from tests.support.slack_api import SlackApiDouble
double = SlackApiDouble(bot_token="xoxb-bench").start()
double.add_user("U03JKIM8QX", "jordan.kim@harborlight.example")
for n in range(int(sys.argv[1])):
    double.add_channel(f"C{n:05d}", kind="public", members=["U03JKIM8QX"])
print(double.url, flush=True)

def first_block(args):
    blocks = args.get("blocks") or [{}]
    return blocks[0].get("block_id") if isinstance(blocks[0], dict) else None

seen = 0
for line in sys.stdin:
    if line.strip() == "messages":
        print(json.dumps(double.messages()), flush=True)
        continue
    new, seen = double.calls[seen:], len(double.calls)
    print(json.dumps([
        {
            "method": c["method"],
            "at": c["at"],
            "channel": c["args"].get("channel") or c["args"].get("channel_id"),
            "thread_ts": c["args"].get("thread_ts"),
            "ts": c["args"].get("ts"),
            "created": c["response"].get("ts") if c["response"].get("ok") else None,
            "ok": c["response"].get("ok"),
            "placeholder": first_block(c["args"]) == "answerdesk_placeholder",
        }
        for c in new
        if c["method"].startswith(("chat.", "assistant."))
    ]), flush=True)
"""


class SlackDouble:
    """The Slack Web API double in a subprocess, with CHANNELS public channels."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _DOUBLE, str(CHANNELS)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._process.stdout.readline().strip()

    def ask(self, what: str) -> list[dict]:
        """ "messages" or "calls" (see _DOUBLE)."""
        self._process.stdin.write(what + "\n")
        self._process.stdin.flush()
        return json.loads(self._process.stdout.readline())

    def close(self) -> None:
        self._process.terminate()


@contextmanager
def serving(slack_url: str, model_url: str, extra_config: str, log: Path | None) -> Iterator:
    """`answerdesk serve --demo` with the model as its one tier and Slack at the double;
    yields (its URL, its process)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "answerdesk.yaml"
        config.write_text(
            "models:\n  tiers:\n    - name: fast\n      model: openai/fast\n"
            f"      api_base: {model_url}\n      api_key_env: BENCH_KEY\n      timeout_s: 30\n"
            "  deadline_s: 120\ncache:\n  enabled: false\nlogging:\n  level: WARNING\n"
            f"slack:\n  api_base_url: {slack_url}\n{extra_config}"
        )
        env = {
            **os.environ,
            "ANSWERDESK_DATA_DIR": str(Path(tmp) / "var"),
            "ANSWERDESK_CONFIG": str(config),
            "BENCH_KEY": "k",
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
        }
        serve = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log.open("w") if log else subprocess.DEVNULL,
            text=True,
        )
        try:
            serve.stdout.readline()  # "Answerdesk is serving on ..."
            # Keep reading its output: a full pipe would block the service's logging.
            threading.Thread(target=serve.stdout.read, daemon=True).start()
            yield f"http://127.0.0.1:{port}", serve
        finally:
            serve.terminate()
            serve.wait(timeout=60)


@dataclass(slots=True)
class Sent:
    thread: str  # "<channel>:<thread ts>"
    at: float  # time.monotonic() when the event left (the machine-wide clock)
    ack_ms: float = 0.0
    ok: bool = False


async def blast(url: str, rate: int, seconds: int, prefix: str, run: int = 0) -> list[Sent]:
    """Signed app_mention events at `rate` per second for `seconds`, spread over the
    channels (as real traffic is), each in a thread of its own (`run` tells apart the
    threads of two blasts at the same rate)."""
    sent: list[Sent] = []
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> None:
            ts = f"{1800000000 + run * 10_000_000 + n}.{rate:03d}100"
            channel = f"C{n % CHANNELS:05d}"
            event = app_mention(
                f"<@UBOT> {QUESTIONS[n % len(QUESTIONS)]}", user=USER, channel=channel, ts=ts
            )
            body = json.dumps(event_payload(event, event_id=f"{prefix}-{n}")).encode()
            record = Sent(f"{channel}:{ts}", time.monotonic())
            sent.append(record)
            started = time.perf_counter()
            try:
                async with session.post(
                    f"{url}/slack/events", data=body, headers=signed_headers(SECRET, body)
                ) as response:
                    await response.read()
                    record.ok = response.status == 200
            except aiohttp.ClientError:
                record.ok = False
            record.ack_ms = (time.perf_counter() - started) * 1000

        tasks = []
        start = time.perf_counter()
        for n in range(rate * seconds):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return sent
