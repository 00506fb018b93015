"""Run a library's cases through the real answer flow, with bounded concurrency.

Each case is asked twice over, on purpose: the retriever is queried on its own (as the
case's readers, depth 10) so retrieval is scored from its ranking alone, and the answer
service answers the question exactly as it would in a chat, so generation is scored from
what a person would read. Earlier turns of a `conversation` are asked first in the same
conversation, so follow-ups are rewritten by the service's own memory.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.answering.memory import Turn, rewrite_follow_up
from core.answering.prompt import PromptSource
from core.answering.service import AnswerService
from core.answering.types import Answer, Asker, Audience, Question
from core.directory import Directory
from core.evaluation.judge import Judge
from core.evaluation.leaks import LeakDetector
from core.evaluation.library import Case
from core.evaluation.metrics import (
    Hit,
    citation_precision_recall,
    citation_validity,
    detect_language,
    retrieval_scores,
)
from core.principals import PUBLIC, Access
from core.retrieval import Retriever

RANKING_DEPTH = 10
PLATFORM = "eval"  # traces of evaluation runs carry it, so harvesting never drafts them


@dataclass(slots=True)
class CaseResult:
    case: Case
    request_id: str = ""
    mode: str = ""
    text: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    ranking: list[dict[str, Any]] = field(default_factory=list)
    context: list[str] = field(default_factory=list)  # chunk ids the answer flow retrieved
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    language: str | None = None
    leaks: list[dict[str, str]] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    failed: list[str] = field(default_factory=list)  # the checks this case did not pass
    scores: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.case.to_json(),
            "request_id": self.request_id,
            "mode": self.mode,
            "answer": self.text,
            "citations": self.citations,
            "retrieved": self.ranking,
            "language_detected": self.language,
            "latency_ms": round(self.latency_ms, 1),
            "cost_usd": round(self.cost_usd, 8),
            "leaks": self.leaks,
            "judge": self.judge,
            "failed": self.failed,
            "scores": self.scores,
        }


class EvalRunner:
    def __init__(
        self,
        answers: AnswerService,
        retriever: Retriever,
        directory: Directory,
        leaks: LeakDetector,
        *,
        judge: Judge | None = None,
        concurrency: int = 4,
    ) -> None:
        self._answers = answers
        self._retriever = retriever
        self._directory = directory
        self._leaks = leaks
        self._judge = judge
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._top_k = answers.config.top_k
        self._run = uuid.uuid4().hex[:8]

    async def run(
        self, cases: Sequence[Case], progress: Callable[[CaseResult], None] | None = None
    ) -> list[CaseResult]:
        async def one(case: Case) -> CaseResult:
            async with self._limit:
                result = await self.run_case(case)
            if progress is not None:
                progress(result)
            return result

        return list(await asyncio.gather(*(one(case) for case in cases)))

    async def run_case(self, case: Case) -> CaseResult:
        audience = Audience.parse(case.audience)
        access = await self._access(case.as_email, audience)
        search_text = _search_text(case)
        depth = max(RANKING_DEPTH, self._retriever.config.top_k)
        ranking = (await self._retriever.search(search_text, access, depth)).hits
        conversation = f"{PLATFORM}:{self._run}:{case.id}" if case.conversation else None
        for earlier in case.conversation:
            await self._answers.answer(_question(earlier, case, audience, conversation))
        answer = await self._answers.answer(_question(case.question, case, audience, conversation))
        result = CaseResult(
            case=case,
            request_id=answer.request_id,
            mode=str(answer.mode),
            text=answer.text,
            citations=[
                {"n": c.n, "document_id": c.document_id, "source": c.source, "page": c.page}
                for c in answer.citations
            ],
            ranking=[
                {
                    "document_id": h.chunk.document_id,
                    "source": h.chunk.source,
                    "page": h.chunk.page,
                    "score": h.score,
                }
                for h in ranking
            ],
            context=_context(answer) or [h.chunk.chunk_id for h in ranking[: self._top_k]],
            latency_ms=answer.latency_ms,
            cost_usd=answer.cost_usd,
        )
        self._score(result, answer, access, [_hit(h.chunk) for h in ranking])
        if self._judge is not None and answer.citations:
            sources = [
                PromptSource(h.chunk.title, h.chunk.page, h.chunk.text)
                for h in ranking
                if h.chunk.chunk_id in set(result.context)
            ]
            result.judge = await self._judge.grade(case.question, answer.text, sources)
            result.scores["generation.groundedness"] = result.judge.get("groundedness")
            result.scores["generation.relevance"] = result.judge.get("relevance")
        return result

    def _score(
        self, result: CaseResult, answer: Answer, access: Access, ranking: list[Hit]
    ) -> None:
        case = result.case
        chunks = self._leaks.chunks
        context = [_hit(chunks[c]) for c in result.context if c in chunks]
        scores = retrieval_scores(ranking, context, case.expected_sources)
        cited_ids = [c.chunk_id for c in answer.citations]
        cited = [(c.document_id, c.source, c.page) for c in answer.citations]
        if answer.citations:
            scores["generation.citation_validity"] = citation_validity(
                answer.text, cited_ids, result.context
            )
        else:
            scores["generation.citation_validity"] = None
        precision, recall = (None, None)
        if case.expected_mode == "answer":
            precision, recall = citation_precision_recall(cited, case.expected_sources)
        scores["generation.citation_precision"] = precision
        scores["generation.citation_recall"] = recall
        scores["generation.must_include_rate"] = (
            float(all(p.found_in(answer.text) for p in case.must_include))
            if case.must_include
            else None
        )
        scores["generation.must_not_include_rate"] = (
            float(not any(p.found_in(answer.text) for p in case.must_not_include))
            if case.must_not_include
            else None
        )
        scores["generation.mode_accuracy"] = float(result.mode == case.expected_mode)
        result.language = detect_language(answer.text)
        scores["generation.language_match"] = (
            None if result.language is None else float(result.language == case.language)
        )
        result.leaks = self._leaks.check(access, result.context, cited_ids, answer.text)
        scores["generation.permission_leaks"] = float(bool(result.leaks))
        result.scores = scores
        result.failed = _failed_checks(case, result, scores)

    async def _access(self, email: str, audience: Audience) -> Access:
        """The case's readers, as the answer flow works them out for this audience."""
        asker = await self._directory.resolve_email(email)
        if audience.kind == "dm":
            return Access(asker.principals)
        if audience.kind == "public":
            return Access(asker.principals, frozenset({PUBLIC}))
        members = [await self._directory.resolve_email(m) for m in audience.members]
        return Access(asker.principals, *(m.principals for m in members))


def _search_text(case: Case) -> str:
    """The question as the service's follow-up rewriting would search it."""
    history: list[Turn] = []
    for earlier in case.conversation:
        text = rewrite_follow_up(earlier, history) or earlier
        history.append(Turn(earlier, text, "answer"))
    return rewrite_follow_up(case.question, history) or case.question


def _question(text: str, case: Case, audience: Audience, conversation: str | None) -> Question:
    return Question(
        text=text,
        asker=Asker(email=case.as_email, platform=PLATFORM),
        audience=audience,
        conversation_id=conversation,
        platform=PLATFORM,
    )


def _context(answer: Answer) -> list[str]:
    hits = ((answer.trace.get("stages") or {}).get("retrieval") or {}).get("hits") or []
    return [h["chunk_id"] for h in hits if isinstance(h, dict) and "chunk_id" in h]


def _hit(chunk: Any) -> Hit:
    return (chunk.document_id, chunk.source, chunk.page)


def _failed_checks(case: Case, result: CaseResult, scores: dict[str, float | None]) -> list[str]:
    """What a reader of the report needs to know about this case, worst first."""
    text = result.text

    def below(metric: str) -> bool:
        value = scores.get(metric)
        return value is not None and value < 1.0

    failed = []
    if result.leaks:
        documents = sorted({leak["document_id"] for leak in result.leaks})
        failed.append(f"PERMISSION LEAK: {', '.join(documents)}")
    if below("generation.mode_accuracy"):
        failed.append(f"mode {result.mode}, expected {case.expected_mode}")
    if below("retrieval.page_recall@5"):
        failed.append("an expected page is not in the top 5")
    if below("generation.citation_validity"):
        failed.append("a citation points outside the retrieved chunks")
    if below("generation.citation_recall"):
        failed.append("an expected source is not cited")
    missing = [p.text for p in case.must_include if not p.found_in(text)]
    if missing:
        failed.append(f"missing: {'; '.join(missing)}")
    present = [p.text for p in case.must_not_include if p.found_in(text)]
    if present:
        failed.append(f"must not include: {'; '.join(present)}")
    if below("generation.language_match"):
        failed.append(f"answered in {result.language}, expected {case.language}")
    return failed
