"""Notice codes and the sentences the adapters show for them."""

from __future__ import annotations

from core.answering.types import Notice, NoticeCode

MESSAGES = {
    NoticeCode.MODEL_UNAVAILABLE: "The answer model is unavailable, so these are the most "
    "relevant passages, without a summary.",
    NoticeCode.MODEL_RATELIMITED: "The answer model is busy right now (rate limited), so this "
    "answer took a fallback path.",
    NoticeCode.FALLBACK_TIER: "The preferred answer model failed; a fallback model wrote this "
    "answer.",
    NoticeCode.EXTRACTIVE_ONLY: "These are quoted passages from the sources, not a generated "
    "summary.",
    NoticeCode.SOURCES_ONLY: "No passage could be quoted with confidence; here are the most "
    "relevant sources.",
    NoticeCode.RETRIEVAL_UNAVAILABLE: "The document search is unavailable right now, so I "
    "cannot answer from the company's documents.",
    NoticeCode.BUDGET_CAPPED: "This question hit the cost limit per request, so a cheaper model "
    "or fewer sources were used.",
    NoticeCode.PRIVATE_ANSWER_AVAILABLE: "Some documents only you can read may answer this "
    "better. Ask me in a direct message for the fuller answer.",
    NoticeCode.CITATIONS_MISSING: "The model's answer did not cite its sources, so quoted "
    "passages are shown instead.",
    NoticeCode.NO_SOURCES: "Nothing in the documents available to this conversation matches "
    "the question.",
    NoticeCode.DATA_BOUNDARY: "Some sources may not be sent to the preferred answer model, so "
    "another model or quoted passages answered.",
    NoticeCode.REVISED_AFTER_CHECK: "This answer was revised after checking its sources; it "
    "replaces the draft shown while it was being written.",
}


def notice(code: NoticeCode) -> Notice:
    return Notice(str(code), MESSAGES[code])


def boundary_notice(boundary: dict[str, list[str]], answered_by: str | None) -> Notice:
    """`data_boundary`, saying which classifications kept which tiers out, and what answered
    instead (a tier's name, or None for quoted passages)."""
    levels = sorted({level for found in boundary.values() for level in found})
    tiers = ", ".join(f"'{name}'" for name in boundary)
    model = "model" if len(boundary) == 1 else "models"
    instead = f"the '{answered_by}' model answered" if answered_by else "quoted passages are shown"
    return Notice(
        str(NoticeCode.DATA_BOUNDARY),
        f"Some sources are classified {' and '.join(levels)}, which the {tiers} {model} may "
        f"not receive, so {instead} instead.",
    )
