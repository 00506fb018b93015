"""Topic rules against ordinary phrasing: precision and recall per rule and overall, on the
labelled set tests/data/governance.jsonl with the rules of tests/data/governance_rules.yaml.

Modes: exact words (how plain patterns matched before: the word itself at word
boundaries, no examples), word forms (Snowball stems; regexes and allow_patterns as
configured; no embeddings), and word forms with examples at each threshold (real MiniLM).
The shipped `policy.example_threshold` is the highest-recall threshold over the whole set
that blocks at most 2% of the questions that must pass (near-misses and unrelated); ties go
to the higher one. The `held_out` split was written after the rules' examples were tuned on
the `tune` split: its figures are the honest estimate for questions nobody tuned for.

    .venv/bin/python benchmarks/governance.py [--split all|tune|held_out] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _support  # noqa: F401  (offline environment, repository on the path)

from core.answering.policy import (
    DEFAULT_EXAMPLE_THRESHOLD,
    PolicyConfig,
    PolicyGate,
    RegexPattern,
    TopicRule,
)
from tests.support.governance import (
    POSITIVE_KINDS,
    Measurement,
    MemoEncoder,
    load_policy,
    load_rows,
    measure,
    with_threshold,
)

THRESHOLDS = [0.40, 0.45, 0.48, 0.50, 0.52, 0.55, 0.58, 0.60, 0.65, 0.70, 0.80]
MAX_FALSE_BLOCKS = 0.02
# "Talk to a human" as it was matched before: one English regex.
_HUMAN_BEFORE = (
    r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*one\s*|)(?:human|person|agent|"
    r"someone|somebody|real person|people)\b|\b(?:human|live|real)\s+(?:agent|person|being|help)\b"
    r"|\bagent,?\s+please\b|\bescalate\b|\bopen\s+a\s+ticket\b|\bhuman\s+please\b"
)


def exact_words(config: PolicyConfig) -> PolicyConfig:
    """The rules as plain patterns matched before word forms: `\\bword\\b`, no examples."""

    def before(rule: TopicRule) -> TopicRule:
        patterns = tuple(
            p
            if p.kind == "regex"
            else RegexPattern(
                p.source,
                re.compile(
                    r"\b" + r"\s+".join(map(re.escape, p.source.split())) + r"\b", re.IGNORECASE
                ),
            )
            for p in rule.patterns
        )
        return TopicRule(rule.name, rule.action, rule.message, patterns)

    human = TopicRule(
        "asks_for_human",
        "handoff",
        None,
        (RegexPattern(_HUMAN_BEFORE, re.compile(_HUMAN_BEFORE, re.I)),),
    )
    return dataclasses.replace(config, topics=tuple(map(before, config.topics)), human=human)


def row(label: str, m: Measurement) -> str:
    kinds = "  ".join(
        f"{k} {m.by_kind.get(k, [0, 0])[0]}/{m.by_kind.get(k, [0, 0])[1]}" for k in POSITIVE_KINDS
    )
    return (
        f"{label:<24} recall {m.recall:5.3f}  precision {m.precision:5.3f}  "
        f"false blocks {m.blocked}/{m.passing} = {m.false_block_rate:5.3f}   {kinds}"
    )


def per_rule(m: Measurement) -> list[str]:
    return [
        f"    {name:<16} precision {c.precision:5.3f}  recall {c.recall:5.3f}  "
        f"(tp {c.tp}, fn {c.fn}, fp {c.fp})"
        for name, c in m.rules.items()
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["all", "tune", "held_out"], default="all")
    parser.add_argument("--verbose", action="store_true", help="list misses and false blocks")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only checks it runs")
    args = parser.parse_args()
    rows = load_rows()
    if args.split != "all":
        rows = [r for r in rows if r["split"] == args.split]
    thresholds = THRESHOLDS
    if args.smoke:
        rows, thresholds = rows[:6] + rows[-6:], [DEFAULT_EXAMPLE_THRESHOLD]
    config = load_policy()

    from adapters.embeddings.local import LocalMiniLMEmbedder

    started = time.perf_counter()
    encoder = MemoEncoder(LocalMiniLMEmbedder())
    rules = config.topics + ((config.human,) if config.human else ())
    encoder.prime([r["text"] for r in rows] + [t for x in rules for t in x.examples])
    encoder.prime([t for x in rules for t in x.allow_examples])
    embedded = time.perf_counter() - started
    positives = sum(1 for r in rows if r["rule"])
    print(
        f"{len(rows)} questions ({positives} on a topic, {len(rows) - positives} must pass; "
        f"split {args.split}), {len(config.topics)} topic rules + asks_for_human; "
        f"embedding took {embedded:.1f} s"
    )

    results: list[tuple[str, Measurement]] = []
    before = await measure(PolicyGate(exact_words(config)), rows, None)
    results.append(("exact words (before)", before))
    forms = await measure(PolicyGate(config), rows, None)
    results.append(("word forms", forms))
    sweep: list[tuple[float, Measurement]] = []
    for threshold in thresholds:
        gate = PolicyGate(with_threshold(config, threshold), encoder)
        sweep.append((threshold, await measure(gate, rows, encoder)))
        results.append((f"word forms + examples {threshold:.2f}", sweep[-1][1]))

    print(
        "\n== overall (recall: on-topic questions caught by their rule; false blocks: "
        "near-misses and unrelated questions blocked)"
    )
    for label, m in results:
        print(row(label, m))
    print("\n== per rule")
    for label, m in results:
        if label in ("exact words (before)", "word forms") or label.endswith(
            f"{DEFAULT_EXAMPLE_THRESHOLD:.2f}"
        ):
            print(label)
            print("\n".join(per_rule(m)))

    if args.split == "all":
        print(f"\n== by split at the shipped threshold {DEFAULT_EXAMPLE_THRESHOLD:.2f}")
        gate = PolicyGate(config, encoder)
        for split in ("tune", "held_out"):
            part = [r for r in rows if r["split"] == split]
            if part:
                print(row(split, await measure(gate, part, encoder)))

    eligible = [(t, m) for t, m in sweep if m.false_block_rate <= MAX_FALSE_BLOCKS]
    if eligible:
        best = max(eligible, key=lambda tm: (tm[1].recall, tm[0]))
        print(
            f"\nbest threshold (highest recall with ≤ {MAX_FALSE_BLOCKS:.0%} false blocks): "
            f"{best[0]:.2f} (recall {best[1].recall:.3f}, false blocks "
            f"{best[1].false_block_rate:.3f}); shipped: {DEFAULT_EXAMPLE_THRESHOLD:.2f}"
        )
    else:
        print(f"\nno threshold keeps false blocks ≤ {MAX_FALSE_BLOCKS:.0%}")
    if args.verbose:
        shipped = next(m for t, m in sweep if t == DEFAULT_EXAMPLE_THRESHOLD)
        print("\nmisses at the shipped threshold:\n  " + "\n  ".join(shipped.misses or ["none"]))
        print("false blocks:\n  " + "\n  ".join(shipped.false_blocks or ["none"]))


if __name__ == "__main__":
    asyncio.run(main())
