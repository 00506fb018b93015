"""Metrics: what each one means, how one case is scored, and how cases add up.

Retrieval is scored from the retriever's ranking alone (chunks in rank order, so "@5" means
the five chunks an answer with top_k 5 would see), at file level and at page level. An
expected source counts once, at the first rank where a chunk of it (on one of its pages, at
page level) appears. Generation is scored from the final answer the service gave.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.evaluation.library import ExpectedSource


@dataclass(frozen=True, slots=True)
class MetricSpec:
    higher_is_better: bool = True
    gated: bool = True  # compared against the baseline by default
    unit: str = "rate"  # rate | count | ms | usd | score


KS = (1, 3, 5, 10)
_RETRIEVAL_BASE = [
    *(f"hit@{k}" for k in KS),
    *(f"recall@{k}" for k in KS),
    "mrr",
    "ndcg@10",
    "context_recall",
]
METRICS: dict[str, MetricSpec] = {
    **{f"retrieval.{name}": MetricSpec() for name in _RETRIEVAL_BASE},
    **{f"retrieval.page_{name}": MetricSpec() for name in _RETRIEVAL_BASE},
    "generation.citation_validity": MetricSpec(),
    "generation.citation_precision": MetricSpec(),
    "generation.citation_recall": MetricSpec(),
    "generation.must_include_rate": MetricSpec(),
    "generation.must_not_include_rate": MetricSpec(),
    "generation.mode_accuracy": MetricSpec(),
    "generation.language_match": MetricSpec(),
    "generation.permission_leaks": MetricSpec(higher_is_better=False, unit="count"),
    "generation.groundedness": MetricSpec(gated=False, unit="score"),
    "generation.relevance": MetricSpec(gated=False, unit="score"),
    "latency.p50_ms": MetricSpec(higher_is_better=False, gated=False, unit="ms"),
    "latency.p95_ms": MetricSpec(higher_is_better=False, gated=False, unit="ms"),
    "cost.mean_usd": MetricSpec(higher_is_better=False, gated=False, unit="usd"),
    "cost.total_usd": MetricSpec(higher_is_better=False, gated=False, unit="usd"),
}
# The figures people read first, in this order, in tables and side-by-side comparisons.
HEADLINE = (
    "retrieval.recall@5",
    "retrieval.page_recall@5",
    "retrieval.mrr",
    "retrieval.page_mrr",
    "retrieval.ndcg@10",
    "retrieval.page_ndcg@10",
    "retrieval.context_recall",
    "generation.citation_validity",
    "generation.citation_precision",
    "generation.citation_recall",
    "generation.must_include_rate",
    "generation.must_not_include_rate",
    "generation.mode_accuracy",
    "generation.language_match",
    "generation.permission_leaks",
    "generation.groundedness",
    "generation.relevance",
    "latency.p50_ms",
    "latency.p95_ms",
    "cost.mean_usd",
)

Hit = tuple[str, str, int | None]  # (document id, source, page) of a chunk, in rank order


# ------------------------------------------------------------------------------ retrieval


def first_ranks(
    hits: Sequence[Hit], expected: Sequence[ExpectedSource], *, pages: bool
) -> list[int | None]:
    """For each expected source, the 1-based rank of the first hit that satisfies it."""
    ranks: list[int | None] = []
    for source in expected:
        found = None
        for rank, (document_id, name, page) in enumerate(hits, start=1):
            if not source.matches(document_id, name):
                continue
            if pages and source.pages and page not in source.pages:
                continue
            found = rank
            break
        ranks.append(found)
    return ranks


def retrieval_scores(
    ranking: Sequence[Hit], context: Sequence[Hit], expected: Sequence[ExpectedSource]
) -> dict[str, float | None]:
    """Per-case retrieval metrics; None for every metric when nothing is expected."""
    out: dict[str, float | None] = {}
    for prefix, pages in (("", False), ("page_", True)):
        names = [f"retrieval.{prefix}{name}" for name in _RETRIEVAL_BASE]
        if not expected:
            out.update(dict.fromkeys(names))
            continue
        ranks = first_ranks(ranking, expected, pages=pages)
        found = [r for r in ranks if r is not None]
        for k in KS:
            out[f"retrieval.{prefix}hit@{k}"] = float(any(r <= k for r in found))
            out[f"retrieval.{prefix}recall@{k}"] = sum(r <= k for r in found) / len(expected)
        out[f"retrieval.{prefix}mrr"] = 1.0 / min(found) if found else 0.0
        dcg = sum(1.0 / math.log2(r + 1) for r in found if r <= 10)
        ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(expected), 10) + 1))
        out[f"retrieval.{prefix}ndcg@10"] = dcg / ideal
        in_context = first_ranks(context, expected, pages=pages)
        out[f"retrieval.{prefix}context_recall"] = sum(r is not None for r in in_context) / len(
            expected
        )
    return out


# ----------------------------------------------------------------------------- generation

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def citation_markers(text: str) -> list[int]:
    return [int(n) for group in _MARKER.findall(text) for n in group.split(",")]


def citation_validity(text: str, cited_chunks: Sequence[str], retrieved: Iterable[str]) -> float:
    """1 when every [n] in the text names a listed citation and every citation is a chunk
    retrieved for this request; 0 otherwise."""
    markers = citation_markers(text)
    if any(not 1 <= n <= len(cited_chunks) for n in markers):
        return 0.0
    return float(set(cited_chunks) <= set(retrieved))


def citation_precision_recall(
    cited: Sequence[Hit], expected: Sequence[ExpectedSource]
) -> tuple[float | None, float | None]:
    """File-level: the share of cited documents that are expected, and of expected sources
    that are cited. None where undefined (nothing cited / nothing expected)."""
    if not expected:
        return None, None
    precision = None
    if cited:
        documents = {(d, s) for d, s, _ in cited}
        good = sum(any(e.matches(d, s) for e in expected) for d, s in documents)
        precision = good / len(documents)
    ranks = first_ranks(cited, expected, pages=False)
    recall = sum(r is not None for r in ranks) / len(expected)
    return precision, recall


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of `text`, None when there are too few words to tell."""
    plain = _MARKER.sub(" ", text)
    if len(re.findall(r"\w+", plain)) < 3:
        return None
    import py3langid  # imported lazily: it loads a model on first use

    code, _ = py3langid.classify(plain)
    return str(code)


# ---------------------------------------------------------------------------- aggregation


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def aggregate(per_case: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summary sections from per-case records (each with `scores`, `latency_ms`, `cost_usd`)."""
    out: dict[str, dict[str, float | None]] = {
        "retrieval": {},
        "generation": {},
        "latency": {},
        "cost": {},
    }
    for metric in METRICS:
        section, name = metric.split(".", 1)
        if section not in ("retrieval", "generation"):
            continue
        values = [case["scores"].get(metric) for case in per_case]
        if metric == "generation.permission_leaks":
            out[section][name] = float(sum(v or 0 for v in values))
        else:
            out[section][name] = _round(mean(values))
    latencies = [float(case["latency_ms"]) for case in per_case]
    costs = [float(case["cost_usd"]) for case in per_case]
    out["latency"] = {
        "p50_ms": _round(percentile(latencies, 50), 1),
        "p95_ms": _round(percentile(latencies, 95), 1),
    }
    out["cost"] = {
        "mean_usd": _round(mean(costs), 8) if costs else None,
        "total_usd": _round(sum(costs), 8),
    }
    return out


def metric_value(summary: Mapping[str, Any], metric: str) -> float | None:
    section, name = metric.split(".", 1)
    value = (summary.get(section) or {}).get(name)
    return float(value) if isinstance(value, int | float) else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
