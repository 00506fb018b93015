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
    NoticeCode.REVISED_AFTER_CHECK: "This answer was revised after checking its sources; it "
    "replaces the draft shown while it was being written.",
}


def notice(code: NoticeCode) -> Notice:
    return Notice(str(code), MESSAGES[code])
