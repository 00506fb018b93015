"""End-to-end answer latency and the service's own overhead, at several concurrencies,
against the pipeline's CPU floor.

The demo corpus is ingested into a temporary data dir; one model tier points at a local
OpenAI-compatible server that answers after 500 ms. First, measured alone (one request at
a time), the CPU floor of a request: the question's embedding (wall time) plus the model
client's CPU per call (a real prompt of the retrieved sources, against a model server that
answers at once), the two costs no pipeline can avoid. Then, for concurrency 1, 16 and 64:
p50/p95 end-to-end latency, p95 overhead (end-to-end minus time inside model calls), that
overhead as a multiple of the floor, and p95 per stage, from the requests' own traces.

    .venv/bin/python benchmarks/pipeline.py [--requests 128] [--delay-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import DEMO, model_server, parse_args, pct

from adapters.llm.litellm_client import LiteLLMClient
from bot.logging import configure_logging
from bot.settings import LoggingSettings, Settings
from bot.wiring import build_services
from core.acl import load_policy
from core.answering.model import TierSpec
from core.answering.prompt import PromptSource, build_messages
from core.answering.types import Asker, Question
from core.directory import load_directory_file

QUESTIONS = [
    "How many PTO days do I get after 3 years?",
    "What is the hotel limit for a trip to Seattle?",
    "Who approves an expense report of $12,000?",
    "What portal address do I enter in GlobalProtect?",
    "How long does a guest Wi-Fi pass last?",
    "My print job isn't showing up at the printer, what should I check?",
    "What is the deductible on Harborlight Basic?",
    "How much is the 401k match?",
    "How do I reset my Okta password?",
    "When do I get a new laptop?",
    "Can I work remotely from another state?",
    "What is the wellness stipend?",
]


async def cpu_floor(services, model_url: str, n: int) -> float:  # type: ignore[no-untyped-def]
    """Embedding (wall, alone) + the model client's CPU per call (alone), in ms."""
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(n)]
    embed = services.embedder.embed
    cpu, walls = time.process_time(), []
    for question in questions:
        started = time.perf_counter()
        await asyncio.to_thread(embed, [question])
        walls.append((time.perf_counter() - started) * 1000)
    embed_cpu = (time.process_time() - cpu) * 1000 / n
    prompts = []
    for question in QUESTIONS:
        found = await services.retriever.search(question, frozenset({"public"}))
        sources = [PromptSource(h.chunk.title, h.chunk.page, h.chunk.text) for h in found.hits]
        prompts.append(build_messages(question, sources))
    tier = TierSpec(name="fast", model="openai/fast", api_base=model_url, api_key="local")
    client = LiteLLMClient()
    for messages in prompts:  # warm up: connections, lazy imports
        await client.complete(tier, messages, 30)
    cpu = time.process_time()
    for i in range(n):
        await client.complete(tier, prompts[i % len(prompts)], 30)
    client_cpu = (time.process_time() - cpu) * 1000 / n
    embed_ms = sum(walls) / n
    floor = embed_ms + client_cpu
    print(
        f"CPU floor per request (alone, {n} requests): embedding {embed_ms:.1f} ms "
        f"(wall; {embed_cpu:.1f} ms CPU) + model client {client_cpu:.1f} ms CPU "
        f"= {floor:.1f} ms"
    )
    return floor


async def run(  # type: ignore[no-untyped-def]
    concurrency: int, total: int, services, email: str, floor: float
) -> None:
    gate = asyncio.Semaphore(concurrency)
    results = []

    async def one(i: int) -> None:
        async with gate:
            question = Question(text=QUESTIONS[i % len(QUESTIONS)], asker=Asker(email=email))
            started = time.perf_counter()
            answer = await services.answers.answer(question)
            results.append(((time.perf_counter() - started) * 1000, answer))

    await asyncio.gather(*(one(i) for i in range(total)))
    e2e = [ms for ms, _ in results]
    overhead = [
        ms - sum(c.get("latency_ms", 0) for c in a.trace["model_calls"]) for ms, a in results
    ]
    tiers = {a.tier for _, a in results}
    stages: dict[str, list[float]] = {}
    for _, answer in results:
        for name, stage in answer.trace["stages"].items():
            stages.setdefault(name, []).append(stage["ms"])
    used = sorted(map(str, tiers))
    print(f"\n== concurrency {concurrency}: {total} requests (tiers used: {used}) ==")
    print(f"end-to-end p50 {pct(e2e, 50):7.1f} ms   p95 {pct(e2e, 95):7.1f} ms")
    print(f"overhead   p50 {pct(overhead, 50):7.1f} ms   p95 {pct(overhead, 95):7.1f} ms")
    ratio = pct(overhead, 95) / floor
    print(f"overhead p95 / CPU floor: {ratio:.2f}x (goal at concurrency 16: <= 1.5x)")
    print("stage p95: " + ", ".join(f"{k} {pct(v, 95):.1f} ms" for k, v in stages.items()))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--delay-ms", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--floor-requests", type=int, default=100)
    args = parse_args(
        parser, {"requests": 4, "delay_ms": 50, "concurrency": [1, 2], "floor_requests": 5}
    )
    configure_logging(LoggingSettings(level="WARNING"))
    with model_server(f"delay:{args.delay_ms}") as url, model_server() as at_once:
        await _bench(args, url, at_once)


async def _bench(args: argparse.Namespace, url: str, at_once: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("BENCH_MODEL_KEY", "local")
        tier = {
            "name": "fast",
            "model": "openai/fast",
            "api_base": url,
            "api_key_env": "BENCH_MODEL_KEY",
            "timeout_s": 30,
        }
        # The cache is off: this measures the full pipeline, not cache hits.
        settings = Settings(
            data_dir=Path(tmp),
            models={"tiers": [tier], "deadline_s": 60},
            cache={"enabled": False},
        )
        services = await build_services(settings)
        await services.directory.import_entries(
            load_directory_file(DEMO / "directory.yaml"), replace=False
        )
        await services.ingestor.ingest([DEMO / "corpus"], load_policy(DEMO / "acl.yaml"))
        for question in QUESTIONS:  # warm up: model, caches, connections
            await services.answers.answer(
                Question(text=question, asker=Asker(email="jordan.kim@harborlight.example"))
            )
        floor = await cpu_floor(services, at_once, args.floor_requests)
        for concurrency in args.concurrency:
            total = max(args.requests, concurrency * 2) if concurrency > 1 else 24
            await run(concurrency, total, services, "jordan.kim@harborlight.example", floor)
        await services.close()


if __name__ == "__main__":
    asyncio.run(main())
