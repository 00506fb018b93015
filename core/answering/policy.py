"""Governance checks on the question, before anything else runs (ARCHITECTURE §2).

Prohibited topics are matched on the question: a pattern with regex syntax is a regex, a
plain word or phrase matches at word boundaries, both case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_REGEX_CHARS = set("\\^$.|?*+()[]{}")

HUMAN_REQUEST = re.compile(
    r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*one\s*|)(?:human|person|agent|"
    r"someone|somebody|real person|people)\b|\b(?:human|live|real)\s+(?:agent|person|being|help)\b"
    r"|\bagent,?\s+please\b|\bescalate\b|\bopen\s+a\s+ticket\b|\bhuman\s+please\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class TopicRule:
    name: str
    patterns: tuple[re.Pattern[str], ...]
    action: str  # "refuse" | "handoff"
    message: str

    def matches(self, text: str) -> bool:
        return any(p.search(text) for p in self.patterns)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    if any(char in _REGEX_CHARS for char in pattern):
        return re.compile(pattern, re.IGNORECASE)
    words = r"\s+".join(re.escape(word) for word in pattern.split())
    return re.compile(rf"\b{words}\b", re.IGNORECASE)


def matching_topic(rules: Sequence[TopicRule], text: str) -> TopicRule | None:
    for rule in rules:
        if rule.matches(text):
            return rule
    return None


def asks_for_human(text: str) -> bool:
    return bool(HUMAN_REQUEST.search(text))
