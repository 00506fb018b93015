"""What releases cost a replica: reading the release state (once per refresh_s), building and
warming a release's answer service when the active release changes, the time until a
replica answers with a newly activated release, and what routing a question through the
switch adds when no refresh is due. Embedded setup (SQLite), no corpus needed.

    .venv/bin/python benchmarks/releases.py [--reads 2000] [--builds 5] [--routes 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import parse_args, pct

from bot.release_file import content_hash, release_id, settings_release
from bot.settings import Settings
from bot.wiring import build_services
from core.answering.types import Asker, Question

REFRESH_S = 0.5


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), releases={"refresh_s": REFRESH_S})
        services = await build_services(settings)
        try:
            await measure(services, args)
        finally:
            await services.close()


async def measure(services, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    store = services.releases.store
    reads = []
    for _ in range(args.reads):
        started = time.perf_counter()
        await store.state()
        reads.append((time.perf_counter() - started) * 1000)
    print(f"release state read (SQLite): p50 {pct(reads, 50):.3f} ms, p95 {pct(reads, 95):.3f} ms")

    ids = []
    for n in range(args.builds + 1):
        content = settings_release(services.settings)
        content["retrieval"]["top_k"] = 3 + n  # a different release each time
        rid = release_id(content)
        await store.create(
            rid, content_hash(content), content, actor="bench", note="", origin="file"
        )
        ids.append(rid)
    builds = []
    for rid in ids[1:]:
        started = time.perf_counter()
        answers = await services.releases.stored(rid)
        await answers.warm_up()
        builds.append((time.perf_counter() - started) * 1000)
    print(f"release build + warm-up: p50 {pct(builds, 50):.1f} ms, max {max(builds):.1f} ms")

    switch = services.answers
    configured = release_id(settings_release(services.settings))
    question = Question("How long does a guest pass last?", Asker(email="a@b.example"))
    await switch.refresh(force=True)
    follow = []
    for rid in ids[: args.builds]:
        await store.activate(rid, actor="bench", configured=configured)
        started = time.perf_counter()
        while (await switch.service_for(question)).config.release != rid:
            await asyncio.sleep(0.01)
        follow.append(time.perf_counter() - started)
    print(
        f"activation → answered with it (refresh_s {REFRESH_S}): "
        f"p50 {pct(follow, 50):.3f} s, max {max(follow):.3f} s"
    )

    started = time.perf_counter()
    for _ in range(args.routes):
        await switch.service_for(question)
    per = (time.perf_counter() - started) / args.routes * 1e6
    print(f"routing a question through the switch (no refresh due): {per:.2f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--builds", type=int, default=5)
    parser.add_argument("--routes", type=int, default=50000)
    asyncio.run(main(parse_args(parser, {"reads": 20, "builds": 2, "routes": 200})))
