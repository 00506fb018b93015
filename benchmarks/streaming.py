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
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _slack_load import Sent, SlackDouble, blast, serving
from _support import model_server, parse_args, pct

from adapters.slack.stream import StreamConfig

FIRST_TOKEN_MS = 800
TOKENS_PER_S = 40


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
        thread = threads.setdefault(
            key, {"calls": 0, "first_text": None, "final": None, "streamed": False}
        )
        thread["calls"] += 1
        method, ok = call["method"], call["ok"]
        shows_text = method == "chat.startStream" or (
            method in ("chat.update", "chat.postMessage") and not call["placeholder"]
        )
        if ok and shows_text and thread["first_text"] is None:
            thread["first_text"] = call["at"]
        if ok and (method == "chat.stopStream" or (shows_text and method != "chat.startStream")):
            thread["final"] = call["at"]
        thread["streamed"] = thread["streamed"] or method == "chat.startStream"
    return threads


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64, help="slack.max_concurrent_answers")
    parser.add_argument("--drain", type=int, default=600, help="max seconds to wait for answers")
    parser.add_argument("--service-log", type=Path, help="write the service's output here")
    args = parse_args(parser, {"rates": [5], "seconds": 2, "drain": 120})
    double = SlackDouble()
    extra = f"  max_concurrent_answers: {args.concurrency}\n"
    try:
        with (
            model_server("", FIRST_TOKEN_MS, TOKENS_PER_S) as model_url,
            serving(double.url, model_url, extra, args.service_log) as (url, serve),
        ):
            double.ask("calls")  # start clean
            for rate in args.rates:
                await _run(args, url, serve.pid, rate, double)
    finally:
        double.close()


async def _run(
    args: argparse.Namespace, url: str, pid: int, rate: int, double: SlackDouble
) -> None:
    cpu_before = cpu_seconds(pid)
    sent = [s for s in await blast(url, rate, args.seconds, f"r{rate}") if s.ok]
    calls: list[dict] = []
    deadline = time.monotonic() + args.drain
    while True:
        calls += double.ask("calls")
        done = {k for k, t in per_thread(calls).items() if t["final"] is not None}
        if {s.thread for s in sent} <= done or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    await asyncio.sleep(1.5)  # late calls (a status clear) still count
    calls += double.ask("calls")
    report(rate, args, sent, per_thread(calls))
    used = cpu_seconds(pid) - cpu_before
    print(f"service CPU: {used * 1000 / max(1, len(sent)):.0f} ms per answer")


def report(rate: int, args: argparse.Namespace, sent: list[Sent], threads: dict) -> None:
    bound = StreamConfig().max_calls_per_answer()
    at = {s.thread: s.at for s in sent}
    mine = {k: threads[k] for k in at if k in threads and threads[k]["final"] is not None}
    first = [(t["first_text"] - at[k]) * 1000 for k, t in mine.items() if t["first_text"]]
    total = [(t["final"] - at[k]) * 1000 for k, t in mine.items()]
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
    streamed = sum(1 for t in mine.values() if t["streamed"])
    print(
        f"answers: {len(mine)} ({streamed} streamed, {len(mine) - streamed} not), "
        f"lost: {len(set(at) - set(mine))}"
    )


if __name__ == "__main__":
    asyncio.run(main())
