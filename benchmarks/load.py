"""Load and soak: one replica under signed Slack events at rising rates, then for a long
while at one rate.

Starts, each in its own process: the Slack Web API double, a model server that streams
(first token after 800 ms, then 40 tokens/s) and `answerdesk serve --demo` (as users run
it) with that model as its only tier. Sends signed `app_mention` events at each rate for
`--seconds` (spread over many channels, each in a thread of its own) and prints, per rate:
ack latency p50/p95/p99, first visible text p95, answer p95 (from sending the event), the
throughput (answers per second, from the first event to the last answer), errors (acks other than
200), questions set aside as busy (the answer queue's notice), lost (no reply at all),
duplicates, and the service's CPU per answer. A rate is *sustained* when every event is
acked 200 with ack p99 < 100 ms, every question is answered once (none set aside, none
lost) and first visible text p95 stays within 1 s of the model's first token (no
queueing). Then the soak: `--soak-seconds` (default 10 minutes) at `--soak-rate` (default:
the highest sustained rate), with the same figures plus the service's RSS sampled every
`--rss-every` seconds (at the soak's start, its peak and after the drain, and the growth).

    .venv/bin/python benchmarks/load.py [--rates 10 15 20 40 70 100] [--seconds 30]
        [--soak-seconds 600] [--soak-rate N] [--concurrency 64] [--max-wait 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _slack_load import Sent, SlackDouble, blast, serving
from _support import model_server, parse_args, pct
from streaming import FIRST_TOKEN_MS, TOKENS_PER_S, cpu_seconds, per_thread

BUSY = "answering a lot of questions right now"
PLACEHOLDER = "Looking into it"
ACK_GOAL_MS = 100
QUEUEING_MS = 1000  # first visible text p95 beyond the first token + this: answers queue


@dataclass
class Outcome:
    rate: int
    sustained: bool


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 15, 20, 40, 70, 100])
    parser.add_argument("--seconds", type=int, default=30, help="per rate")
    parser.add_argument("--soak-seconds", type=int, default=600)
    parser.add_argument("--soak-rate", type=int, help="default: the highest sustained rate")
    parser.add_argument("--rss-every", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64, help="answer_queue.max_concurrent")
    parser.add_argument("--max-wait", type=float, default=60, help="answer_queue.max_wait_s")
    parser.add_argument("--drain", type=int, default=240, help="max seconds to wait for replies")
    parser.add_argument("--service-log", type=Path, help="write the service's output here")
    args = parse_args(
        parser, {"rates": [3], "seconds": 2, "soak_seconds": 3, "rss_every": 1, "drain": 120}
    )
    double = SlackDouble()
    extra = (
        "  post_interval_s: 1.0\n"
        f"answer_queue:\n  max_concurrent: {args.concurrency}\n  max_waiting: 100000\n"
        f"  max_wait_s: {args.max_wait}\n"
    )
    print(
        f"model: first token after {FIRST_TOKEN_MS} ms, then {TOKENS_PER_S} tokens/s; "
        f"answer_queue.max_concurrent {args.concurrency}, max_wait_s {args.max_wait:g}; "
        f"{os.cpu_count()} CPUs; load average at start {load_average()}"
    )
    try:
        with (
            model_server("", FIRST_TOKEN_MS, TOKENS_PER_S) as model_url,
            serving(double.url, model_url, extra, args.service_log) as (url, serve),
        ):
            double.ask("calls")  # start clean
            outcomes = []
            for rate in args.rates:
                outcomes.append(await _run(args, url, serve.pid, rate, args.seconds, double))
            sustained = [o.rate for o in outcomes if o.sustained]
            best = max(sustained) if sustained else None
            print(f"\nhighest sustained rate: {best if best else 'none'} events/s")
            soak_rate = args.soak_rate or best or min(args.rates)
            await _run(args, url, serve.pid, soak_rate, args.soak_seconds, double, soak=True)
    finally:
        double.close()


async def _run(
    args: argparse.Namespace,
    url: str,
    pid: int,
    rate: int,
    seconds: int,
    double: SlackDouble,
    soak: bool = False,
) -> Outcome:
    cpu_before = cpu_seconds(pid)
    rss: list[float] = [rss_mb(pid)]
    sampling = asyncio.create_task(_sample_rss(pid, args.rss_every, rss)) if soak else None
    sent = await blast(url, rate, seconds, f"{'soak' if soak else 'r'}{rate}", run=int(soak))
    load = load_average()
    ok = [s for s in sent if s.ok]
    calls: list[dict] = []
    deadline = time.monotonic() + args.drain
    while True:
        calls += double.ask("calls")
        threads = per_thread(calls)
        replied = {k for k, t in threads.items() if t["final"] is not None}
        if {s.thread for s in ok} <= replied or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    await asyncio.sleep(1.5)  # late calls (a duplicate, a status clear) still count
    calls += double.ask("calls")
    if sampling is not None:
        sampling.cancel()
        rss.append(rss_mb(pid))
    messages = double.ask("messages")
    used = cpu_seconds(pid) - cpu_before
    title = "soak" if soak else "rate"
    print(f"\n== {title}: {rate} events/s for {seconds} s ({len(sent)} events) ==")
    outcome = _report(rate, sent, per_thread(calls), messages)
    answers = max(1, outcome[1])
    print(f"service CPU: {used * 1000 / answers:.0f} ms per answer; load average {load}")
    if soak:
        start, peak, end = rss[0], max(rss), rss[-1]
        growth = (end - start) / start * 100 if start else 0.0
        print(
            f"RSS: start {start:.0f} MB, peak {peak:.0f} MB, end {end:.0f} MB, "
            f"growth {growth:+.1f} % (goal < 10 %; {len(rss)} samples)"
        )
    return Outcome(rate, outcome[0])


async def _sample_rss(pid: int, every: float, into: list[float]) -> None:
    while True:
        await asyncio.sleep(every)
        into.append(rss_mb(pid))


def _report(rate: int, sent: list[Sent], threads: dict, messages: list[dict]) -> tuple[bool, int]:
    """Print the rate's figures; (sustained, answers)."""
    at = {s.thread: s.at for s in sent if s.ok}
    texts: dict[str, list[str]] = {}
    for m in messages:
        key = f"{m['channel']}:{m['thread_ts']}"
        if key in at and PLACEHOLDER not in (m.get("text") or ""):
            texts.setdefault(key, []).append(m.get("text") or "")
    busy = {k for k, t in texts.items() if any(BUSY in x for x in t)}
    duplicates = sum(len(t) - 1 for t in texts.values())
    answered = {k: threads[k] for k in at if k in threads and threads[k]["final"] and k not in busy}
    missing = sorted(set(at) - set(answered) - busy)
    lost = len(missing)
    for key in missing[:3]:  # what the double saw of them, to tell a lost answer from a slow one
        seen = threads.get(key) or {}
        print(f"  no reply in {key}: {seen.get('calls', 0)} calls, messages {texts.get(key)}")
    errors = len(sent) - len(at)
    acks = [s.ack_ms for s in sent]
    p50, p95, p99 = (pct(acks, q) for q in (50, 95, 99))
    print(
        f"ack latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms "
        f"(goal: p99 < {ACK_GOAL_MS} ms)"
    )
    first = [(t["first_text"] - at[k]) * 1000 for k, t in answered.items() if t["first_text"]]
    total = [(t["final"] - at[k]) * 1000 for k, t in answered.items()]
    if answered:
        print(
            f"first visible text p95 {pct(first, 95):.0f} ms, answer p95 {pct(total, 95):.0f} ms "
            f"(model: first token after {FIRST_TOKEN_MS} ms)"
        )
    else:
        print("first visible text p95 -, answer p95 - (no answers)")
    if answered:  # from the first event sent to the last answer shown
        span = max(t["final"] for t in answered.values()) - min(at.values())
        print(f"throughput: {len(answered) / span:.1f} answers/s ({len(answered)} answers)")
    else:
        print("throughput: 0.0 answers/s (0 answers)")
    print(
        f"errors: {errors}, set aside (busy): {len(busy)}, lost: {lost}, duplicates: {duplicates}"
    )
    sustained = (
        errors == 0
        and not busy
        and lost == 0
        and duplicates == 0
        and p99 < ACK_GOAL_MS
        and bool(first)
        and pct(first, 95) <= FIRST_TOKEN_MS + QUEUEING_MS
    )
    print(f"sustained: {'yes' if sustained else 'no'}")
    return sustained, len(answered)


if __name__ == "__main__":
    asyncio.run(main())
