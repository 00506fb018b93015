"""Word forms, regexes and allow rules of the policy gate (no embeddings here: examples
are tested with the real model in tests/integration/test_governance.py)."""

from __future__ import annotations

import re

import pytest

from core.answering.policy import (
    HUMAN_RULE,
    PolicyConfig,
    PolicyGate,
    QuestionText,
    TopicRule,
    compile_pattern,
)
from core.answering.wordforms import DEFAULT_LANGUAGES, LanguageDetector, fold, stems

LAYOFFS = TopicRule(
    "layoffs",
    "refuse",
    "No.",
    tuple(compile_pattern(p) for p in ("layoff", "lay off", "redundancies", "Entlassung")),
    allow_patterns=(compile_pattern(r"\bredundant (?:links?|servers?)\b"),),
)


async def decide(text: str, rules: tuple[TopicRule, ...] = (LAYOFFS,)) -> str | None:
    check = await PolicyGate(PolicyConfig(rules, HUMAN_RULE)).check(text, None)
    if check.topic:
        return f"{check.topic.rule.name}:{check.topic.how}:{check.topic.evidence}"
    return f"human:{check.human.how}" if check.human else None


@pytest.mark.parametrize(
    "text",
    [
        "are there going to be layoffs next quarter?",
        "LAYOFFS in Q3??",
        "I heard about lay-offs in finance",
        "Is the company laying off people?",
        "Were there redundancy payments?",  # redundancy/redundancies share the stem
        "Gibt es nächstes Quartal Entlassungen?",
    ],
)
async def test_word_forms_match(text: str) -> None:
    assert (await decide(text) or "").startswith("layoffs:word_form:")


@pytest.mark.parametrize(
    "text",
    [
        "How do I lay out the expense report?",  # "lay out" is not "lay off"
        "Can I take a day off?",
        "Do we have redundant links at the Portland store?",  # an allow pattern
        "What is the dress code?",
    ],
)
async def test_other_words_and_allowed_near_misses_pass(text: str) -> None:
    assert await decide(text) is None


async def test_an_allow_pattern_is_recorded() -> None:
    check = await PolicyGate(PolicyConfig((LAYOFFS,), None)).check(
        "Are redundant servers in place?", None
    )
    assert check.topic is None
    assert check.allowed == [
        {"rule": "layoffs", "how": "allow_regex", "by": r"\bredundant (?:links?|servers?)\b"}
    ]
    assert check.examples == "off: no rule has examples"


def test_accents_and_case_are_folded() -> None:
    assert fold("Licenciés ÉTÉ Straße") == "licencies ete strasse"
    assert stems("harcèlement", "fr") == stems("HARCELEMENT", "fr")


def test_regex_patterns_stay_as_written() -> None:
    pattern = compile_pattern(r"\bsue (?:my|the) manager\b")
    assert pattern.kind == "regex"
    assert pattern.matches(QuestionText("Can I sue my manager?", ["en"]))
    assert not pattern.matches(QuestionText("Can I sue managers?", ["en"]))  # no word forms
    with pytest.raises(re.error):
        compile_pattern("(unclosed")


def test_language_candidates() -> None:
    detector = LanguageDetector(DEFAULT_LANGUAGES)
    assert detector.candidates("Gibt es nächstes Quartal Entlassungen?")[0] == "de"
    assert detector.candidates("¿Habrá despidos el próximo trimestre?")[0] == "es"
    assert detector.candidates("Are layoffs coming next quarter?")[0] == "en"
    # The platform's locale is tried first; an ambiguous short text brings several.
    assert detector.candidates("layoffs?", "fr-CA")[0] == "fr"
    assert len(detector.candidates("layoffs?")) > 1
    with pytest.raises(ValueError, match="word-form languages"):
        LanguageDetector(["xx"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can I talk to a human please?", "human:regex"),
        ("agent please", "human:regex"),
        ("Please escalate this", "human:regex"),
        ("Kann ich mit einem Menschen sprechen?", "human:regex"),
        ("Je veux parler à quelqu'un du support.", "human:regex"),
        ("Ik wil met een medewerker spreken.", "human:regex"),
        ("How do I escalate a P1 incident in the runbook?", None),
        ("Who is the human resources contact?", None),
    ],
)
async def test_human_request_patterns(text: str, expected: str | None) -> None:
    assert await decide(text, ()) == expected


async def test_a_topic_rule_wins_over_the_human_request() -> None:
    assert await decide("Talk to a human about layoffs") == "layoffs:word_form:layoff"


async def test_warm_up_embeds_the_examples_once() -> None:
    calls: list[list[str]] = []

    async def encode(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return [[1.0, 0.0] for _ in texts]

    rule = TopicRule("layoffs", "refuse", "No.", examples=("Are layoffs coming?",))
    gate = PolicyGate(PolicyConfig((rule,), HUMAN_RULE), encode)
    await gate.warm_up()
    assert len(calls) == 1 and "Are layoffs coming?" in calls[0]
    assert set(HUMAN_RULE.examples) <= set(calls[0])
    check = await gate.check("Something else entirely", [1.0, 0.0])
    assert check.examples == "used" and check.topic is not None  # identical vectors: 1.0
    assert check.topic.how == "example" and len(calls) == 1
