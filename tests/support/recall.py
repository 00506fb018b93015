"""Recall@k of a retriever on a question set with expected file and pages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.principals import PUBLIC
from core.retrieval import Retriever


@dataclass(frozen=True)
class RecallResult:
    questions: int
    page_recall: float
    file_recall: float
    misses: list[str]


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def recall_at_k(
    retriever: Retriever,
    questions: list[dict],
    k: int = 5,
    principals: frozenset[str] | None = None,
) -> RecallResult:
    principals = principals or frozenset({PUBLIC})
    page_hits = file_hits = 0
    misses = []
    for item in questions:
        result = await retriever.search(item["question"], principals, k)
        files = [h.chunk.source for h in result.hits]
        file_ok = item["file"] in files
        pages = item.get("pages")
        page_ok = file_ok and (
            pages is None
            or any(h.chunk.source == item["file"] and h.chunk.page in pages for h in result.hits)
        )
        file_hits += file_ok
        page_hits += page_ok
        if not page_ok:
            misses.append(item["question"])
    n = len(questions)
    return RecallResult(n, page_hits / n, file_hits / n, misses)
