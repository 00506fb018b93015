"""Evaluation metrics, comparison and leak checks on small worked examples."""

from __future__ import annotations

import math

import pytest

from core.acl import policy_from_mapping
from core.evaluation.compare import Delta, compare, regressions
from core.evaluation.leaks import CorpusChunk, LeakDetector
from core.evaluation.library import ExpectedSource, Phrase
from core.evaluation.metrics import (
    aggregate,
    citation_precision_recall,
    citation_validity,
    percentile,
    retrieval_scores,
)
from core.principals import Access

RANKING = [
    ("a.pdf", "a.pdf", 3),
    ("b.pdf", "b.pdf", 1),
    ("a.pdf", "a.pdf", 7),
    ("c.md", "docs/c.md", None),
]


def test_ranks_count_chunks_and_pages_matter_at_page_level() -> None:
    expected = [ExpectedSource("a.pdf", (7,)), ExpectedSource("c.md")]
    scores = retrieval_scores(RANKING, RANKING[:2], expected)
    assert scores["retrieval.hit@1"] == 1.0  # a.pdf at rank 1
    assert scores["retrieval.page_hit@1"] == 0.0  # page 7 only at rank 3
    assert scores["retrieval.recall@3"] == 0.5  # c.md is at rank 4
    assert scores["retrieval.recall@5"] == 1.0
    assert scores["retrieval.page_recall@3"] == 0.5
    assert scores["retrieval.mrr"] == 1.0
    assert scores["retrieval.page_mrr"] == pytest.approx(1 / 3)
    ideal = 1 + 1 / math.log2(3)
    assert scores["retrieval.ndcg@10"] == pytest.approx((1 + 1 / math.log2(5)) / ideal)
    assert scores["retrieval.context_recall"] == 0.5  # the answer saw ranks 1-2 only
    assert scores["retrieval.page_context_recall"] == 0.0
    assert retrieval_scores(RANKING, RANKING, [])["retrieval.mrr"] is None


def test_file_names_match_document_ids_sources_and_base_names() -> None:
    assert ExpectedSource("c.md").matches("c.md", "docs/c.md")
    assert ExpectedSource("docs/c.md").matches("x", "docs/c.md")
    assert not ExpectedSource("c.md").matches("d.md", "docs/d.md")


def test_citation_validity_and_precision_recall() -> None:
    assert citation_validity("A [1]. B [1, 2].", ["x", "y"], ["x", "y", "z"]) == 1.0
    assert citation_validity("A [3].", ["x", "y"], ["x", "y"]) == 0.0  # points nowhere
    assert citation_validity("A [1].", ["q"], ["x", "y"]) == 0.0  # not retrieved
    cited = [("a.pdf", "a.pdf", 3), ("b.pdf", "b.pdf", 1)]
    precision, recall = citation_precision_recall(
        cited, [ExpectedSource("a.pdf"), ExpectedSource("c.md")]
    )
    assert (precision, recall) == (0.5, 0.5)
    assert citation_precision_recall(cited, []) == (None, None)


def test_phrases_ignore_case_spacing_and_emphasis_regexes_are_regexes() -> None:
    assert Phrase.parse("20 days").found_in("You get **20  Days** a year.")
    assert not Phrase.parse("20 days").found_in("You get 120 day passes")
    assert Phrase.parse("/\\$ ?325/").found_in("jusqu'à $ 325 par nuit")


def test_aggregate_leaks_add_up_and_percentiles_are_nearest_rank() -> None:
    cases = [
        {
            "scores": {"generation.permission_leaks": 1.0, "retrieval.mrr": 1.0},
            "latency_ms": 10,
            "cost_usd": 0.0,
        },
        {
            "scores": {"generation.permission_leaks": 0.0, "retrieval.mrr": None},
            "latency_ms": 30,
            "cost_usd": 0.002,
        },
    ]
    summary = aggregate(cases)
    assert summary["generation"]["permission_leaks"] == 1.0
    assert summary["retrieval"]["mrr"] == 1.0  # undefined values do not count as zero
    assert summary["cost"]["mean_usd"] == 0.001
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == 10
    assert percentile([5, 1, 3], 50) == 3


def test_regressions_respect_direction_and_tolerance() -> None:
    base = {
        "retrieval": {"mrr": 0.9},
        "generation": {"permission_leaks": 0.0},
        "latency": {"p95_ms": 100.0},
        "by_tag": {"acl": {"retrieval": {"mrr": 1.0}}},
    }
    now = {
        "retrieval": {"mrr": 0.88},
        "generation": {"permission_leaks": 0.0},
        "latency": {"p95_ms": 900.0},
        "by_tag": {"acl": {"retrieval": {"mrr": 0.5}}},
    }
    tolerance = {"retrieval.mrr": 0.05, "latency.p95_ms": None}.get
    deltas = compare(now, base, lambda m: tolerance(m, 0.0))
    bad = regressions(deltas)
    assert [(d.metric, d.scope) for d in bad] == [("retrieval.mrr", "acl")]
    assert Delta("latency.p95_ms", 200.0, 100.0, 50.0).regressed  # lower is better
    assert not Delta("retrieval.mrr", 0.95, 0.9, 0.0).regressed  # an improvement


def test_leaks_retrieved_cited_and_quoted_by_ingested_and_reference_acl() -> None:
    secret = "the salary band for level four engineers starts at ninety two thousand dollars"
    chunks = [
        CorpusChunk("c1", "hr/bands.md", "hr/bands.md", None, frozenset({"group:hr"}), secret),
        CorpusChunk(
            "c2",
            "pto.md",
            "pto.md",
            None,
            frozenset({"public"}),
            "twenty days of paid time off after three years of service at the company",
        ),
        # Ingested as public by mistake; the reference ACL says finance only.
        CorpusChunk(
            "c3",
            "fin/close.md",
            "fin/close.md",
            None,
            frozenset({"public"}),
            "book the inventory shrink reserve at one point eight percent of cost",
        ),
    ]
    reference = policy_from_mapping(
        {
            "default": ["public"],
            "rules": [
                {"match": "fin/**", "allow": ["group:finance"]},
                {"match": "hr/**", "allow": ["group:hr"]},
            ],
        }
    )
    detector = LeakDetector(chunks, reference)
    reader = Access(frozenset({"public", "user:jo@x.example"}))
    assert detector.check(reader, ["c2"], ["c2"], "You get twenty days.") == []
    found = detector.check(reader, ["c2", "c3"], [], f"Quote: {secret[:70]}")
    assert {(f["how"], f["document_id"]) for f in found} == {
        ("retrieved", "fin/close.md"),
        ("quoted", "hr/bands.md"),
    }
    hr = Access(frozenset({"public", "group:hr"}))
    assert detector.check(hr, ["c1"], ["c1"], secret) == []
