"""Streamed answers in Slack under load: time to the first visible text, total time and Web
API calls per answer.

Starts, each in its own process: the Slack Web API double, a model server that streams
(first token after 800 ms, then 40 tokens/s) and `answerdesk serve` on the demo corpus with
that model as its only tier. Sends signed `app_mention` events at each rate for the given
seconds (spread over many channels, as real traffic is) and prints, per rate: the time from
sending the event to the answer's first words in the thread (p50/p95), to the final message
(p50/p95), and the Web API calls per answer (chat.* and assistant.*) against the bound the
buffer rule allows.

    .venv/bin/python benchmarks/streaming.py [--rates 5 20 50] [--seconds 20]
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

from adapters.slack.stream import StreamConfig
from tests.support.slack_api import app_mention, event_payload, signed_headers

SECRET = "bench-signing-secret"
USER = "U03JKIM8QX"  # jordan.kim in the demo directory
CHANNELS = 400
FIRST_TOKEN_MS = 800
TOKENS_PER_S = 40
QUESTIONS = [
    "How long does a guest Wi-Fi pass last?",
    "What portal address do I enter in GlobalProtect?",
    "How many PTO days do I get after 3 years?",
    "What is the hotel limit for a trip to Seattle?",
]
# The double in its own process; on each line read, it prints the calls since the last
# time, compactly.
DOUBLE_SCRIPT = """
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
    new, seen = double.calls[seen:], len(double.calls)
    calls = [
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
    ]
    print(json.dumps(calls), flush=True)
"""


async def blast(url: str, rate: int, seconds: int, prefix: str) -> dict[str, float]:
    """Send the events at `rate`; returns thread key -> when its event was sent."""
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> None:
            ts = f"{1800000000 + n}.{rate:03d}100"
            channel = f"C{n % CHANNELS:05d}"
            event = app_mention(
                f"<@UBOT> {QUESTIONS[n % len(QUESTIONS)]}", user=USER, channel=channel, ts=ts
            )
            body = json.dumps(event_payload(event, event_id=f"{prefix}-{n}")).encode()
            sent[f"{channel}:{ts}"] = time.monotonic()
            async with session.post(
                f"{url}/slack/events", data=body, headers=signed_headers(SECRET, body)
            ) as response:
                await response.read()
                if response.status != 200:
                    del sent[f"{channel}:{ts}"]

        tasks = []
        start = time.perf_counter()
        for n in range(rate * seconds):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return sent


def per_thread(calls: list[dict]) -> dict[str, dict]:
    """Each answer's calls: when its first words and its final message showed, and how many
    calls it made."""
    owner: dict[str, str] = {}  # message ts -> thread key
    threads: dict[str, dict] = {}
    for call in sorted(calls, key=lambda c: c["at"]):
        if call["thread_ts"]:
            key = f"{call['channel']}:{call['thread_ts']}"
        else:
            key = owner.get(call["ts"] or "", "")
        if not key:
            continue
        if call["created"]:
            owner[call["created"]] = key
        thread = threads.setdefault(key, {"calls": 0, "first_text": None, "final": None})
        thread["calls"] += 1
        method, ok = call["method"], call["ok"]
        shows_text = method == "chat.startStream" or (
            method in ("chat.update", "chat.postMessage") and not call["placeholder"]
        )
        if ok and shows_text and thread["first_text"] is None:
            thread["first_text"] = call["at"]
        if ok and (method == "chat.stopStream" or (shows_text and method != "chat.startStream")):
            thread["final"] = call["at"]
        thread["streamed"] = thread.get("streamed", False) or method == "chat.startStream"
    return threads


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_calls(double: subprocess.Popen) -> list[dict]:
    double.stdin.write("\n")
    double.stdin.flush()
    return json.loads(double.stdout.readline())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64, help="slack.max_concurrent_answers")
    parser.add_argument("--drain", type=int, default=600, help="max seconds to wait for answers")
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
        with model_server("", FIRST_TOKEN_MS, TOKENS_PER_S) as model_url:
            await _run(args, slack_url, model_url, double)
    finally:
        double.terminate()


async def _run(
    args: argparse.Namespace, slack_url: str, model_url: str, double: subprocess.Popen
) -> None:
    port = free_port()
    bound = StreamConfig().max_calls_per_answer()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "answerdesk.yaml"
        config.write_text(
            "models:\n  tiers:\n    - name: fast\n      model: openai/fast\n"
            f"      api_base: {model_url}\n      api_key_env: BENCH_KEY\n      timeout_s: 30\n"
            "  deadline_s: 120\ncache:\n  enabled: false\nlogging:\n  level: WARNING\n"
            f"slack:\n  api_base_url: {slack_url}\n"
            f"  max_concurrent_answers: {args.concurrency}\n"
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
            threading.Thread(target=serve.stdout.read, daemon=True).start()
            read_calls(double)  # start clean
            for rate in args.rates:
                cpu_before = cpu_seconds(serve.pid)
                sent = await blast(url, rate, args.seconds, f"r{rate}")
                calls: list[dict] = []
                deadline = time.monotonic() + args.drain
                while True:
                    calls += read_calls(double)
                    threads = per_thread(calls)
                    done = {k for k, t in threads.items() if t["final"] is not None}
                    if set(sent) <= done or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(2)
                await asyncio.sleep(1.5)  # late calls (a status clear) still count
                calls += read_calls(double)
                report(rate, args, sent, per_thread(calls), bound)
                used = cpu_seconds(serve.pid) - cpu_before
                print(f"service CPU: {used * 1000 / max(1, len(sent)):.0f} ms per answer")
        finally:
            serve.terminate()
            serve.wait(timeout=60)


def report(
    rate: int, args: argparse.Namespace, sent: dict[str, float], threads: dict, bound: int
) -> None:
    mine = {k: threads[k] for k in sent if k in threads and threads[k]["final"] is not None}
    first = [(t["first_text"] - sent[k]) * 1000 for k, t in mine.items() if t["first_text"]]
    total = [(t["final"] - sent[k]) * 1000 for k, t in mine.items()]
    counts = [t["calls"] for t in mine.values()]
    print(
        f"\n== {rate} events/s for {args.seconds} s ({len(sent)} events, "
        f"{args.concurrency} answers at once) =="
    )
    if not mine:
        print("no answers")
        return
    goal = FIRST_TOKEN_MS + 150
    print(
        f"first visible text: p50 {pct(first, 50):.0f} ms, p95 {pct(first, 95):.0f} ms "
        f"(goal: p95 <= {goal} ms, the model's first token after {FIRST_TOKEN_MS} ms + 150 ms)"
    )
    print(f"final answer: p50 {pct(total, 50):.0f} ms, p95 {pct(total, 95):.0f} ms")
    print(
        f"Web API calls per answer: mean {sum(counts) / len(counts):.1f}, max {max(counts)} "
        f"(buffer rule bound: {bound}; over it: {sum(c > bound for c in counts)})"
    )
    streamed = sum(1 for t in mine.values() if t.get("streamed"))
    print(
        f"answers: {len(mine)} ({streamed} streamed, {len(mine) - streamed} not), "
        f"lost: {len(set(sent) - set(mine))}"
    )


if __name__ == "__main__":
    asyncio.run(main())
