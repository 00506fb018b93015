"""Governance checks on the question, before retrieval or any model call (ARCHITECTURE §2).

A topic rule matches a question in one of three ways, tried in this order:
- a **word form**: a plain word or phrase in `patterns` whose Snowball stems occur, in
  order, among the question's stems in the question's language (core/answering/wordforms.py:
  case- and accent-insensitive; "layoff" matches "Layoffs", "lay-offs"; "lay off" matches
  "laying off");
- a **regex**: a pattern with regex syntax, searched case-insensitively as written;
- an **example**: the question's embedding is at least `threshold` (cosine) similar to one
  of the rule's `examples`; the default threshold was chosen by measurement
  (benchmarks/governance.py over tests/data/governance.jsonl).

Near-misses are expressed on the rule itself: a question that matches one of its
`allow_patterns` (word forms or regexes), or whose best `allow_examples` similarity reaches
the threshold and is at least its best `examples` similarity, is let through by that rule.
"What is the layoff notice period in the handbook?" contains "layoff", but sits next to the
allow example "How much notice does the handbook give before a layoff?".

"Asks for a human" is the same mechanism: the built-in rule HUMAN_RULE (regexes in the
supported languages and English examples), extended from configuration.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from core.answering.wordforms import DEFAULT_LANGUAGES, LanguageDetector, contains, stems

_REGEX_CHARS = set("\\^$.|?*+()[]{}")
# Measured on tests/data/governance.jsonl (benchmarks/governance.py; README "Governance").
DEFAULT_EXAMPLE_THRESHOLD = 0.50

Encode = Callable[[Sequence[str]], Awaitable[list[list[float]]]]


class Pattern(Protocol):
    source: str
    kind: str  # "word_form" | "regex"

    def matches(self, question: QuestionText) -> bool: ...


@dataclass(frozen=True, slots=True)
class RegexPattern:
    source: str
    regex: re.Pattern[str]
    kind: str = "regex"

    def matches(self, question: QuestionText) -> bool:
        return bool(self.regex.search(question.text))


@dataclass(frozen=True, slots=True)
class WordFormPattern:
    source: str
    kind: str = "word_form"

    def matches(self, question: QuestionText) -> bool:
        return question.has_word_form(self.source)


def compile_pattern(pattern: str) -> Pattern:
    """A pattern with regex syntax is a regex (re.error if it is not a valid one); anything
    else is a word or phrase matched by word form."""
    if any(char in _REGEX_CHARS for char in pattern):
        return RegexPattern(pattern, re.compile(pattern, re.IGNORECASE))
    if not any(stems(pattern, "en")[0]):
        raise re.error(f"pattern {pattern!r} has no words")
    return WordFormPattern(pattern.strip())


class QuestionText:
    """A question as the rules see it: its text, candidate languages and stems (computed
    once per language)."""

    def __init__(self, text: str, languages: Sequence[str]) -> None:
        self.text = text
        self.languages = tuple(languages)
        self._stems = {lang: stems(text, lang) for lang in self.languages}

    def has_word_form(self, phrase: str) -> bool:
        for lang in self.languages:
            needles = stems(phrase, lang)
            if any(contains(hay, needle) for hay in self._stems[lang] for needle in needles):
                return True
        return False


@dataclass(frozen=True, slots=True)
class TopicRule:
    name: str
    action: str  # "refuse" | "handoff"
    message: str | None  # None: the flow's own wording (the human rule)
    patterns: tuple[Pattern, ...] = ()
    examples: tuple[str, ...] = ()
    allow_patterns: tuple[Pattern, ...] = ()
    allow_examples: tuple[str, ...] = ()
    threshold: float | None = None  # None: the configured default

    def extended(
        self,
        patterns: Sequence[Pattern] = (),
        examples: Sequence[str] = (),
        allow_patterns: Sequence[Pattern] = (),
        allow_examples: Sequence[str] = (),
        threshold: float | None = None,
    ) -> TopicRule:
        return replace(
            self,
            patterns=(*self.patterns, *patterns),
            examples=(*self.examples, *examples),
            allow_patterns=(*self.allow_patterns, *allow_patterns),
            allow_examples=(*self.allow_examples, *allow_examples),
            threshold=threshold if threshold is not None else self.threshold,
        )


def _regexes(*patterns: str) -> tuple[Pattern, ...]:
    return tuple(compile_pattern(p) for p in patterns)


_PERSON_EN = (
    r"(?:a\s+|an\s+|some\s*one\s*|)(?:human|person|agent|someone|somebody|real person|people)"
)
HUMAN_RULE = TopicRule(
    name="asks_for_human",
    action="handoff",
    message=None,
    patterns=_regexes(
        rf"\b(?:talk|speak|chat)\s+(?:to|with)\s+{_PERSON_EN}\b",
        r"\b(?:human|live|real)\s+(?:agent|person|being|help)\b",
        r"\b(?:agent|human),?\s+please\b",
        r"\bopen\s+a\s+ticket\b",
        # "escalate" alone is also a word of IT runbooks ("how do I escalate a P1?").
        r"\bescalate\s+(?:this|it|me|my\s+\w+)\b|\bplease\s+escalate\b|^\W*escalate\W*$",
        r"\b(?:mit\s+)?(?:einem|einer|einen)\s+(?:echten\s+|richtigen\s+)?(?:menschen|"
        r"mitarbeiter(?:in)?|person|berater(?:in)?)\s+(?:sprechen|reden)\b",
        r"\bparler\s+(?:à|a|avec)\s+(?:quelqu.un|(?:un|une)\s+(?:vraie?\s+)?(?:humain|"
        r"personne|conseill(?:er|ère)|agent))\b",
        r"\bhablar\s+con\s+(?:alguien|(?:un|una)\s+(?:persona|humano|agente|asesora?))\b",
        r"\bparlare\s+con\s+(?:qualcuno|(?:un|una|un')\s*(?:persona|operatore|operatrice|"
        r"umano|agente))\b",
        r"\bfalar\s+com\s+(?:algu[eé]m|(?:um|uma)\s+(?:pessoa|humano|atendente|agente))\b",
        r"\b(?:spreken|praten)\s+met\s+(?:iemand|een\s+(?:mens|persoon|medewerker))\b",
        r"\bmet\s+(?:iemand|een\s+(?:echte\s+)?(?:mens|persoon|medewerker))\s+(?:spreken|praten)\b",
    ),
    examples=(
        "Can I talk to a real person?",
        "I want to speak with someone from the help desk.",
        "Please connect me with a human agent.",
        "I'd rather deal with a person than a bot.",
        "Get me a human.",
        "Can someone from support contact me directly?",
        "This isn't helping, I need a person.",
        "Transfer me to a live agent.",
        "Is there a human I can chat with?",
        "Please hand this over to a colleague who can help.",
        "Can you get someone from the support team to help me?",
        "Put me in touch with a staff member.",
        "Can a real person look at this?",
        "Send my question to someone who can answer it.",
    ),
)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    topics: tuple[TopicRule, ...] = ()
    human: TopicRule | None = HUMAN_RULE
    example_threshold: float = DEFAULT_EXAMPLE_THRESHOLD
    languages: tuple[str, ...] = DEFAULT_LANGUAGES


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule: TopicRule
    how: str  # "word_form" | "regex" | "example"
    evidence: str  # the pattern or example that matched
    score: float | None = None  # cosine similarity, for an example

    def to_trace(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule.name, "how": self.how, "by": self.evidence}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        out["action"] = self.rule.action
        return out


@dataclass(slots=True)
class PolicyCheck:
    topic: RuleMatch | None
    human: RuleMatch | None
    languages: tuple[str, ...]
    examples: str  # "used" | "off: <why>"
    allowed: list[dict[str, Any]] = field(default_factory=list)  # rules a near-miss passed
    scores: dict[str, float] = field(default_factory=dict)  # rule → best example similarity

    def to_trace(self) -> dict[str, Any]:
        return {
            "topic_match": self.topic.to_trace() if self.topic else None,
            "human_match": self.human.to_trace() if self.human else None,
            "languages": list(self.languages),
            "examples": self.examples,
            "allowed_by": self.allowed,
            "example_scores": self.scores,
        }


@dataclass(frozen=True, slots=True)
class _Vectors:
    examples: np.ndarray  # one row per example (unit vectors)
    allow: np.ndarray


class PolicyGate:
    """Evaluates the rules against a question. Example embeddings are computed once, on the
    first question, through `encode` (the service's embedder)."""

    def __init__(self, config: PolicyConfig, encode: Encode | None = None) -> None:
        self.config = config
        self.rules = (*config.topics, *([config.human] if config.human else []))
        self._encode = encode
        self._detector = LanguageDetector(config.languages)
        self._vectors: dict[str, _Vectors] | None = None
        self._lock = asyncio.Lock()

    @property
    def needs_embedding(self) -> bool:
        return self._encode is not None and any(r.examples or r.allow_examples for r in self.rules)

    async def check(
        self, text: str, vector: Sequence[float] | None, locale: str | None = None
    ) -> PolicyCheck:
        question = QuestionText(text, self._detector.candidates(text, locale))
        vectors, why = await self._example_vectors(vector)
        query = np.asarray(vector, dtype=np.float32) if vectors is not None else None
        check = PolicyCheck(None, None, question.languages, why)
        for rule in self.rules:
            found = self._evaluate(rule, question, query, vectors, check)
            if found is None:
                continue
            if rule is self.config.human:
                check.human = found
            else:
                check.topic = found
                break  # the first topic rule decides; the human rule comes last
        return check

    def _evaluate(
        self,
        rule: TopicRule,
        question: QuestionText,
        query: np.ndarray | None,
        vectors: dict[str, _Vectors] | None,
        check: PolicyCheck,
    ) -> RuleMatch | None:
        threshold = rule.threshold if rule.threshold is not None else self.config.example_threshold
        found = next(
            (RuleMatch(rule, p.kind, p.source) for p in rule.patterns if p.matches(question)),
            None,
        )
        best = best_allow = None
        if query is not None and vectors is not None:
            own = vectors[rule.name]
            best = _best(own.examples, query, rule.examples)
            best_allow = _best(own.allow, query, rule.allow_examples)
            if best is not None:
                check.scores[rule.name] = round(best[1], 4)
            if found is None and best is not None and best[1] >= threshold:
                found = RuleMatch(rule, "example", best[0], best[1])
        if found is None:
            return None
        allow = next((p for p in rule.allow_patterns if p.matches(question)), None)
        if allow is not None:
            check.allowed.append(
                {"rule": rule.name, "how": f"allow_{allow.kind}", "by": allow.source}
            )
            return None
        # An allow example lets the question through when it is at least as close as the
        # rule's own examples: the question is more like the legitimate one.
        if (
            best_allow is not None
            and best_allow[1] >= threshold
            and (best is None or best_allow[1] >= best[1])
        ):
            check.allowed.append(
                {
                    "rule": rule.name,
                    "how": "allow_example",
                    "by": best_allow[0],
                    "score": round(best_allow[1], 4),
                }
            )
            return None
        return found

    async def _example_vectors(
        self, vector: Sequence[float] | None
    ) -> tuple[dict[str, _Vectors] | None, str]:
        if not any(r.examples or r.allow_examples for r in self.rules):
            return None, "off: no rule has examples"
        if self._encode is None:
            return None, "off: no embedder"
        if vector is None:
            return None, "off: the question could not be embedded"
        return await self._load_vectors(self._encode)

    async def _load_vectors(self, encode: Encode) -> tuple[dict[str, _Vectors] | None, str]:
        if self._vectors is None:
            async with self._lock:
                if self._vectors is None:
                    try:
                        self._vectors = await self._embed_examples(encode)
                    except Exception as exc:  # word forms and regexes still apply
                        return None, f"off: examples could not be embedded ({type(exc).__name__})"
        return self._vectors, "used"

    async def warm_up(self) -> None:
        """Load the language identifier (in a thread: it takes ~0.5 s) and embed the
        examples, so the first question pays neither on the event loop."""
        await asyncio.to_thread(self._detector.candidates, "warm-up")
        if self.needs_embedding and self._encode is not None:
            await self._load_vectors(self._encode)

    async def _embed_examples(self, encode: Encode) -> dict[str, _Vectors]:
        texts = list(dict.fromkeys(t for r in self.rules for t in (*r.examples, *r.allow_examples)))
        embedded = dict(zip(texts, await encode(texts), strict=True))

        def matrix(items: Sequence[str]) -> np.ndarray:
            if not items:
                return np.zeros((0, 0), dtype=np.float32)
            return np.asarray([embedded[t] for t in items], dtype=np.float32)

        return {r.name: _Vectors(matrix(r.examples), matrix(r.allow_examples)) for r in self.rules}


def _best(matrix: np.ndarray, query: np.ndarray, texts: Sequence[str]) -> tuple[str, float] | None:
    if not texts:
        return None
    scores = matrix @ query
    index = int(np.argmax(scores))
    return texts[index], float(scores[index])
