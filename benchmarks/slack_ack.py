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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _slack_load import SlackDouble, blast, serving
from _support import model_server, parse_args, pct


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--drain", type=int, default=900, help="max seconds to wait for answers")
    parser.add_argument("--service-log", type=Path, help="write the service's output here")
    args = parse_args(parser, {"rates": [5], "seconds": 2, "drain": 120})
    double = SlackDouble()
    try:
        with (
            model_server("delay:1000") as model_url,
            serving(double.url, model_url, "", args.service_log) as (url, _),
        ):
            for rate in args.rates:
                await _run(args, url, rate, double)
    finally:
        double.close()


async def _run(args: argparse.Namespace, url: str, rate: int, double: SlackDouble) -> None:
    sent = await blast(url, rate, args.seconds, f"r{rate}")
    latencies = [s.ack_ms for s in sent]
    errors = sum(not s.ok for s in sent)
    threads = {s.thread for s in sent if s.ok}
    deadline = time.monotonic() + args.drain
    while True:
        messages = double.ask("messages")
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


if __name__ == "__main__":
    asyncio.run(main())
