"""Slack ack latency under load against one `answerdesk serve`.

Starts, each in its own process: a Slack Web API double, an OpenAI-compatible model server
that answers after 1 s, and `answerdesk serve` on the demo corpus with one model tier. Then
sends signed `app_mention` events at each rate for the given seconds (spread over many
channels, as real traffic is) and prints ack latency p50/p95/p99, answers posted,
duplicates, errors and lost events (no answer after the drain period).

    .venv/bin/python benchmarks/slack_ack.py [--rates 20 50 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import ROOT, free_port, model_server, parse_args, pct

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
DOUBLE_SCRIPT = """
import json, sys, time
from tests.support.slack_api import SlackApiDouble
double = SlackApiDouble(bot_token="xoxb-bench").start()
double.add_user("U03JKIM8QX", "jordan.kim@harborlight.example")
for n in range(int(sys.argv[1])):
    double.add_channel(f"C{n:05d}", kind="public", members=["U03JKIM8QX"])
print(double.url, flush=True)
for line in sys.stdin:
    print(json.dumps(double.messages()), flush=True)
"""


async def blast(
    url: str, rate: int, seconds: int, prefix: str
) -> tuple[list[float], int, set[str]]:
    latencies: list[float] = []
    errors = 0
    threads: set[str] = set()
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> None:
            nonlocal errors
            ts = f"{1800000000 + n}.{rate:03d}100"
            channel = f"C{n % CHANNELS:05d}"
            event = app_mention(
                f"<@UBOT> {QUESTIONS[n % len(QUESTIONS)]}", user=USER, channel=channel, ts=ts
            )
            body = json.dumps(event_payload(event, event_id=f"{prefix}-{n}")).encode()
            started = time.perf_counter()
            try:
                async with session.post(
                    f"{url}/slack/events", data=body, headers=signed_headers(SECRET, body)
                ) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            if ok:
                threads.add(f"{channel}:{ts}")
            else:
                errors += 1

        tasks = []
        start = time.perf_counter()
        for n in range(rate * seconds):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return latencies, errors, threads


def read_messages(double: subprocess.Popen) -> list[dict]:
    double.stdin.write("\n")
    double.stdin.flush()
    return json.loads(double.stdout.readline())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--drain", type=int, default=900, help="max seconds to wait for answers")
    parser.add_argument("--service-log", type=Path, help="write the service's output here")
    args = parse_args(parser, {"rates": [5], "seconds": 2, "drain": 120})
    double = subprocess.Popen(
        [sys.executable, "-c", DOUBLE_SCRIPT, str(CHANNELS)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    slack_url = double.stdout.readline().strip()
    try:
        with model_server("delay:1000") as model_url:
            await _run(args, slack_url, model_url, double)
    finally:
        double.terminate()


async def _run(
    args: argparse.Namespace, slack_url: str, model_url: str, double: subprocess.Popen
) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "answerdesk.yaml"
        config.write_text(
            "models:\n  tiers:\n    - name: fast\n      model: openai/fast\n"
            f"      api_base: {model_url}\n      api_key_env: BENCH_KEY\n      timeout_s: 30\n"
            "  deadline_s: 120\ncache:\n  enabled: false\nlogging:\n  level: WARNING\n"
            f"slack:\n  api_base_url: {slack_url}\n"
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
            stderr=args.service_log.open("w") if args.service_log else subprocess.DEVNULL,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            serve.stdout.readline()  # "Answerdesk is serving on ..."
            # Keep reading its output: a full pipe would block the service's logging.
            threading.Thread(target=serve.stdout.read, daemon=True).start()
            for rate in args.rates:
                latencies, errors, threads = await blast(url, rate, args.seconds, f"r{rate}")
                deadline = time.monotonic() + args.drain
                while True:
                    messages = read_messages(double)
                    answered = {
                        f"{m['channel']}:{m['thread_ts']}"
                        for m in messages
                        if "Looking into it" not in (m.get("text") or "")
                    }
                    if threads <= answered or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(2)
                mine = [m for m in messages if f"{m['channel']}:{m['thread_ts']}" in threads]
                per_thread: dict[str, int] = {}
                for m in mine:
                    key = f"{m['channel']}:{m['thread_ts']}"
                    per_thread[key] = per_thread.get(key, 0) + 1
                duplicates = sum(count - 1 for count in per_thread.values())
                print(f"\n== {rate} events/s for {args.seconds} s ({len(latencies)} events) ==")
                p50, p95, p99 = (pct(latencies, q) for q in (50, 95, 99))
                print(f"ack latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
                print(
                    f"answers posted: {len(threads & answered)}, duplicates: {duplicates}, "
                    f"errors: {errors}, lost: {len(threads - answered)}"
                )
        finally:
            serve.terminate()
            serve.wait(timeout=60)


if __name__ == "__main__":
    asyncio.run(main())
