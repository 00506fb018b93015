"""The labelled governance set and its measurement, shared by benchmarks/governance.py and
tests/integration/test_governance.py.

`tests/data/governance.jsonl`: one question per line with `rule` (the rule that must catch
it, or null when it must pass), `kind` (word_form, paraphrase, other_language, near_miss,
unrelated), `lang`, `split` (`tune`: the rules and the threshold were chosen looking at
these; `held_out`: written after both were frozen) and, for near-misses, `near` (the rule
it resembles). The rules are `tests/data/governance_rules.yaml`, an ordinary configuration
file loaded through the settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.answering.policy import PolicyConfig, PolicyGate
from core.ports import Embedder

DATA = Path(__file__).resolve().parents[1] / "data"
LABELLED = DATA / "governance.jsonl"
RULES = DATA / "governance_rules.yaml"
POSITIVE_KINDS = ("word_form", "paraphrase", "other_language")
PASSING_KINDS = ("near_miss", "unrelated")


def load_rows(path: Path = LABELLED) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_policy(path: Path = RULES) -> PolicyConfig:
    """The rules file, loaded exactly as `answerdesk` loads a configuration file."""
    from bot.settings import CONFIG_ENV, load_settings
    from bot.wiring import policy_config

    previous = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = str(path)
    try:
        settings = load_settings()
    finally:
        if previous is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = previous
    return policy_config(settings.policy)


class MemoEncoder:
    """The embedder behind the gate's `encode`, each text embedded once."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._memo: dict[str, list[float]] = {}

    def prime(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            self._memo.update(zip(missing, self._embedder.embed(missing), strict=True))

    def vector(self, text: str) -> list[float]:
        self.prime([text])
        return self._memo[text]

    async def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.prime(texts)
        return [self._memo[t] for t in texts]


async def predicted_rule(gate: PolicyGate, text: str, vector: Sequence[float] | None) -> str | None:
    """What the gate does with the question: the topic rule that decides it, else
    "asks_for_human" when that rule matches, else None (it passes)."""
    check = await gate.check(text, vector)
    if check.topic is not None:
        return check.topic.rule.name
    return check.human.rule.name if check.human else None


@dataclass
class Counts:
    tp: int = 0
    fn: int = 0
    fp: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Measurement:
    rules: dict[str, Counts] = field(default_factory=dict)
    positives: int = 0
    caught: int = 0  # positives blocked by the rule they are labelled with
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind → [caught, total]
    passing: int = 0  # near-misses and unrelated questions
    blocked: int = 0  # of those, blocked by some rule
    misses: list[str] = field(default_factory=list)
    false_blocks: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught / self.positives if self.positives else 1.0

    @property
    def false_block_rate(self) -> float:
        return self.blocked / self.passing if self.passing else 0.0

    @property
    def precision(self) -> float:
        tp = sum(c.tp for c in self.rules.values())
        fp = sum(c.fp for c in self.rules.values())
        return tp / (tp + fp) if tp + fp else 1.0


async def measure(
    gate: PolicyGate, rows: Sequence[dict[str, Any]], encoder: MemoEncoder | None
) -> Measurement:
    """Run the gate over labelled rows; `encoder` None = word forms and regexes only."""
    result = Measurement(rules={rule.name: Counts() for rule in gate.rules})
    for row in rows:
        vector = encoder.vector(row["text"]) if encoder is not None else None
        got = await predicted_rule(gate, row["text"], vector)
        want = row["rule"]
        kind = result.by_kind.setdefault(row["kind"], [0, 0])
        kind[1] += 1
        if want is not None:
            result.positives += 1
            if got == want:
                result.caught += 1
                kind[0] += 1
                result.rules[want].tp += 1
            else:
                result.rules[want].fn += 1
                result.misses.append(f"{want}: {row['text']} (got {got})")
        else:
            result.passing += 1
            if got is not None:
                result.blocked += 1
                kind[0] += 1
                result.false_blocks.append(f"{got}: {row['text']}")
        if got is not None and got != want:
            result.rules[got].fp += 1
    return result


def with_threshold(config: PolicyConfig, threshold: float) -> PolicyConfig:
    return dataclasses.replace(config, example_threshold=threshold)
