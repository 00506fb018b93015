"""Semantic cache replay: hit rate, false hits, permission violations, lookup latency, savings.

A generator of our own replays ≥ 500 questions over the demo corpus with realistic
repetition: popular questions asked again verbatim, paraphrased, or as near-misses that
change one decisive detail, by users with different permissions (HR, finance, engineering,
an unknown user). One model tier points at a local OpenAI-compatible server (in its own
process) with a price per token, so the model calls and cost the cache saved are real counts.

For every hit it also computes a fresh answer with the cache off: a *false hit* is a hit
whose cited documents differ from the fresh answer's. A *permission violation* is a hit
whose context includes a document the requester may not read (checked against the ACLs).

    .venv/bin/python benchmarks/cache.py [--events 600] [--seed 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import DEMO, model_server, parse_args, pct

from bot.logging import configure_logging
from bot.settings import LoggingSettings, Settings
from bot.wiring import build_services
from core.acl import load_policy
from core.answering.types import Asker, Question
from core.directory import load_directory_file
from core.principals import Access

USERS = [
    "jordan.kim@harborlight.example",  # engineering
    "priya.raman@harborlight.example",  # hr
    "marcus.oyelaran@harborlight.example",  # finance
    "ceo@harborlight.example",  # executives + named on compensation bands
    "visitor@elsewhere.example",  # unknown: public only
]
# (question, paraphrases, near-misses): near-misses change one decisive detail.
FAMILIES = [
    (
        "How many PTO days do I get after 3 years?",
        [
            "how many days of PTO after three years",
            "What's my PTO allowance after 3 years of service?",
        ],
        ["How many PTO days do I get after 10 years?"],
    ),
    (
        "What is the hotel limit for a trip to Seattle?",
        ["hotel limit seattle trip", "How much can I spend on a hotel in Seattle?"],
        ["What is the hotel limit for a trip to Boise?"],
    ),
    (
        "Who approves an expense report of $12,000?",
        [
            "who has to approve a $12,000 expense report",
            "Approval needed for a 12,000 dollar expense report?",
        ],
        ["Who approves an expense report of $500?"],
    ),
    (
        "What portal address do I enter in GlobalProtect?",
        ["globalprotect portal address", "Which portal do I type into GlobalProtect?"],
        ["What portal address do I enter in Okta?"],
    ),
    (
        "How long does a guest Wi-Fi pass last?",
        ["how long is a guest wifi pass valid", "For how long does a guest Wi-Fi pass work?"],
        ["How long does an employee Wi-Fi pass last?"],
    ),
    (
        "What is the deductible on Harborlight Basic?",
        ["Harborlight Basic deductible", "How high is the deductible for Harborlight Basic?"],
        ["What is the deductible on Harborlight Plus?"],
    ),
    (
        "How much is the 401k match?",
        ["what's the 401k match", "How much does Harborlight match on the 401k?"],
        ["When does the 401k match vest?"],
    ),
    (
        "How do I reset my Okta password?",
        ["reset okta password", "What are the steps to reset my Okta password?"],
        ["How do I reset my VPN password?"],
    ),
    (
        "What is the wellness stipend?",
        ["how much is the wellness stipend", "Tell me about the wellness stipend"],
        ["What is the wellness stipend for part-time staff?"],
    ),
    (
        "Can I work remotely from another state?",
        [
            "can I work remote from a different state",
            "Is working remotely from another state allowed?",
        ],
        ["Can I work remotely from another country?"],
    ),
    (
        "What is the salary range for an L4 in the Portland area?",
        ["L4 salary range Portland", "What does an L4 earn in the Portland area?"],
        ["What is the salary range for an L6 in the Portland area?"],
    ),
    (
        "What are the steps of the quarterly close?",
        ["quarterly close steps", "Which steps does the quarterly close have?"],
        ["What are the steps of the annual close?"],
    ),
    (
        "Who approves a vendor payment of $60,000?",
        ["who approves a $60,000 vendor payment", "Approval for a 60,000 dollar vendor payment?"],
        ["Who approves a vendor payment of $5,000?"],
    ),
    (
        "How does performance review calibration work?",
        [
            "how does calibration of performance reviews work",
            "Explain performance review calibration",
        ],
        ["When does performance review calibration happen?"],
    ),
    (
        "My print job isn't showing up at the printer, what should I check?",
        [
            "print job not showing at the printer",
            "What should I check when my print job doesn't show up?",
        ],
        ["My scan isn't showing up in my email, what should I check?"],
    ),
]


def generate(events: int, seed: int) -> list[tuple[str, str, str]]:
    """(user, question, kind) with Zipf-like popularity across families."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(FAMILIES))]
    out = []
    for _ in range(events):
        base, paraphrases, near = rng.choices(FAMILIES, weights)[0]
        kind = rng.choices(["repeat", "paraphrase", "near_miss"], [0.45, 0.4, 0.15])[0]
        text = (
            base if kind == "repeat" else rng.choice(paraphrases if kind == "paraphrase" else near)
        )
        out.append((rng.choice(USERS), text, kind))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--seed", type=int, default=3)
    args = parse_args(parser, {"events": 40})
    configure_logging(LoggingSettings(level="WARNING"))
    os.environ["BENCH_MODEL_KEY"] = "local"
    with model_server() as url:
        await replay(args, url)


async def replay(args: argparse.Namespace, url: str) -> None:
    tier = {
        "name": "fast",
        "model": "openai/fast",
        "api_base": url,
        "api_key_env": "BENCH_MODEL_KEY",
        "input_cost_per_token": 1.5e-7,
        "output_cost_per_token": 6e-7,
    }
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), models={"tiers": [tier]})
        services = await build_services(settings)
        fresh = await build_services(
            settings.model_copy(
                update={"cache": settings.cache.model_copy(update={"enabled": False})}
            )
        )
        await services.directory.import_entries(
            load_directory_file(DEMO / "directory.yaml"), replace=False
        )
        await services.ingestor.ingest([DEMO / "corpus"], load_policy(DEMO / "acl.yaml"))
        acl_sets = await services.catalog.acl_sets()
        events = generate(args.events, args.seed)
        hits = false_hits = violations = model_calls = 0
        saved_calls, saved_cost, spent = 0, 0.0, 0.0
        lookup_ms: list[float] = []
        by_kind: dict[str, list[int]] = {}
        for user, text, kind in events:
            answer = await services.answers.answer(Question(text=text, asker=Asker(email=user)))
            stage = answer.trace["stages"].get("cache")
            if stage:
                lookup_ms.append(stage["ms"])
            model_calls += sum(1 for c in answer.trace["model_calls"] if c["outcome"] == "ok")
            spent += answer.cost_usd
            hit = answer.cache["status"] == "hit"
            by_kind.setdefault(kind, [0, 0])[0] += hit
            by_kind[kind][1] += 1
            if not hit:
                continue
            hits += 1
            baseline = await fresh.answers.answer(Question(text=text, asker=Asker(email=user)))
            saved_calls += sum(1 for c in baseline.trace["model_calls"] if c["outcome"] == "ok")
            saved_cost += baseline.cost_usd
            if {c.document_id for c in answer.citations} != {
                c.document_id for c in baseline.citations
            }:
                false_hits += 1
                if os.environ.get("BENCH_VERBOSE"):
                    print(
                        "false hit:",
                        kind,
                        repr(text),
                        "cached:",
                        sorted({c.document_id for c in answer.citations}),
                        "fresh:",
                        sorted({c.document_id for c in baseline.citations}),
                    )
            reader = await services.directory.resolve_email(user)
            entry = (await services.cache_store.load([answer.trace["cache_entry"]]))[
                answer.trace["cache_entry"]
            ]
            if not all(
                Access(reader.principals).allows(acl_sets[c.acl_key]) for c in entry.context
            ):
                violations += 1
        await fresh.close()
        await services.close()
    n = len(events)
    print(f"replayed {n} questions, {len(USERS)} users, {len(FAMILIES)} question families")
    print(f"hit rate           : {hits / n:.1%} ({hits} hits)")
    for kind, (k_hits, total) in sorted(by_kind.items()):
        print(f"  {kind:10s}       : {k_hits}/{total} hit")
    print(f"false-hit rate     : {false_hits / max(hits, 1):.2%} of hits ({false_hits})")
    print(f"permission violations: {violations}")
    print(f"lookup latency     : p50 {pct(lookup_ms, 50):.1f} ms, p95 {pct(lookup_ms, 95):.1f} ms")
    print(f"model calls        : {model_calls} with cache; {saved_calls} saved by it")
    print(f"model cost         : ${spent:.4f} with cache; ${saved_cost:.4f} saved by it")


if __name__ == "__main__":
    asyncio.run(main())
