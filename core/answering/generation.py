"""Generation (ARCHITECTURE §2): tier routing within the budget, model calls with deadline,
Retry-After and circuit breakers, the citation check with one escalation, and the
extractive tier as the last resort. Every failure still returns an Answer."""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.answering.breaker import CircuitBreaker
from core.answering.citations import check_citations
from core.answering.config import AnswerConfig
from core.answering.extractive import extract_answer, sources_only, split_sentences
from core.answering.model import ModelClient, ModelError, TierSpec
from core.answering.notices import boundary_notice
from core.answering.notices import notice as _notice
from core.answering.progress import ProgressReporter
from core.answering.prompt import PromptSource, build_messages
from core.answering.router import RoutePlan, RoutingInput, TierPrice, plan_route
from core.answering.tracing import TraceRecorder
from core.answering.types import Answer, Citation, Mode, Notice, NoticeCode, Question
from core.classification import not_allowed
from core.retrieval import SearchHit

_CANNOT_ANSWER = re.compile(
    r"\b(?:do(?:es)? not (?:contain|answer|mention|provide|include)|cannot answer|can't answer|"
    r"unable to answer|no information|not (?:mentioned|provided|specified|covered) in)\b",
    re.IGNORECASE,
)


@dataclass(slots=True)
class _Attempts:
    """What happened across the model tiers of one request."""

    cost_usd: float = 0.0
    failures: list[str] = field(default_factory=list)  # failure kinds, in order
    quality_escalations: int = 0


Embed = Callable[[list[str]], Awaitable[list[list[float]]]]
SENTENCE_VECTORS_KEPT = 4096  # about 6 MB of MiniLM vectors (float32)


class TierGenerator:
    def __init__(
        self, models: ModelClient, config: AnswerConfig, *, embed: Embed | None = None
    ) -> None:
        self._models = models
        self.config = config
        self._embed = embed  # for the extractive tier: sentences scored by meaning too
        self._sentence_vectors: OrderedDict[str, array[float]] = OrderedDict()
        self._breakers = {
            tier.name: CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)
            for tier in config.tiers
        }

    def breaker_states(self) -> dict[str, str]:
        """Each tier's circuit breaker: closed, open or half_open."""
        return {name: breaker.state for name, breaker in self._breakers.items()}

    async def generate(
        self,
        question: Question,
        text: str,
        hits: list[SearchHit],
        trace: TraceRecorder,
        progress: ProgressReporter | None = None,
    ) -> tuple[Answer, list[SearchHit]]:
        """The answer, and the hits that went into the answering model's context. With
        ``progress``, each model attempt streams its text there (see core/answering/progress)."""
        deadline = time.monotonic() + self.config.deadline_s
        with trace.stage("routing") as stage:
            plan = self._plan(text, hits)
            stage.update(
                score=plan.complexity.score,
                features=plan.complexity.features,
                reason=plan.reason,
                complexity_reason=plan.complexity.reason,
                steps=[
                    {
                        "tier": s.tier,
                        "sources": s.sources_used,
                        "est_cost_usd": s.estimated_cost_usd,
                    }
                    for s in plan.steps
                ],
                budget_capped=plan.budget_capped,
                context_classifications=[h.chunk.classification for h in hits],
                boundary=plan.boundary,
                boundary_changed=plan.boundary_changed,
            )
        notices: list[Notice] = []
        if plan.budget_capped:
            notices.append(_notice(NoticeCode.BUDGET_CAPPED))
        attempts = _Attempts()
        tiers = {tier.name: tier for tier in self.config.tiers}
        with trace.stage("generation") as stage:
            for index, step in enumerate(plan.steps):
                tier = tiers[step.tier]
                sources = hits[: step.sources_used]
                reply_text = await self._call_tier(
                    tier, question, text, sources, deadline, attempts, trace, progress
                )
                if reply_text is None:
                    continue
                check = check_citations(reply_text, len(sources))
                cannot = not check.ok and bool(_CANNOT_ANSWER.search(reply_text))
                stage.setdefault("citation_checks", []).append(
                    {
                        "tier": tier.name,
                        "cited": list(check.cited),
                        "invalid": list(check.invalid),
                        "cannot_answer": cannot,
                    }
                )
                if check.ok or not self.config.require_citations:
                    if index > 0 and attempts.failures:
                        notices.append(_notice(NoticeCode.FALLBACK_TIER))
                    if "ratelimited" in attempts.failures:
                        notices.append(_notice(NoticeCode.MODEL_RATELIMITED))
                    if plan.boundary_changed:
                        notices.append(boundary_notice(plan.boundary, tier.name))
                    mode = Mode.DEGRADED if attempts.failures else Mode.ANSWER
                    answer = Answer(
                        request_id="",
                        mode=mode,
                        text=check.text,
                        citations=_citations(check.cited, sources),
                        notices=notices,
                        tier=tier.name,
                        model=tier.model,
                        cost_usd=attempts.cost_usd,
                    )
                    return answer, sources
                # Uncited, or "cannot answer" although sources exist: escalate once.
                attempts.quality_escalations += 1
                if attempts.quality_escalations > 1 or index == len(plan.steps) - 1:
                    if cannot:
                        if plan.boundary_changed:
                            notices.append(boundary_notice(plan.boundary, tier.name))
                        answer = Answer(
                            request_id="",
                            mode=Mode.ANSWER,
                            text=reply_text.strip(),
                            notices=notices,
                            tier=tier.name,
                            model=tier.model,
                            cost_usd=attempts.cost_usd,
                        )
                        return answer, sources
                    attempts.failures.append("uncited")
                    break
        if plan.boundary:  # a tier the boundary kept out might have answered
            notices.append(boundary_notice(plan.boundary, None))
        return await self._fallback(text, hits, attempts, notices), hits

    async def _call_tier(
        self,
        tier: TierSpec,
        question: Question,
        text: str,
        sources: list[SearchHit],
        deadline: float,
        attempts: _Attempts,
        trace: TraceRecorder,
        progress: ProgressReporter | None = None,
    ) -> str | None:
        refused = not_allowed(
            (h.chunk.classification for h in sources), tier.allowed_classifications
        )
        if refused:  # the plan never routes here; this guard keeps it so if that changes
            trace.model_call(tier=tier.name, model=tier.model, outcome="skipped: data boundary")
            attempts.failures.append("boundary")
            return None
        breaker = self._breakers[tier.name]
        if not breaker.allow():
            held_off = breaker.held_off
            outcome = "skipped: rate limited" if held_off else "skipped: circuit open"
            trace.model_call(tier=tier.name, model=tier.model, outcome=outcome)
            attempts.failures.append("ratelimited" if held_off else "unavailable")
            return None
        locale = self.config.language if self.config.language != "auto" else question.locale
        messages = build_messages(
            text,
            [PromptSource(h.chunk.title, h.chunk.page, h.chunk.text) for h in sources],
            locale,
            self.config.system_prompt,
        )
        for attempt in (1, 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                trace.model_call(tier=tier.name, model=tier.model, outcome="skipped: deadline")
                attempts.failures.append("timeout")
                return None
            on_text = None
            if progress is not None:
                # A new attempt voids the draft an earlier one streamed.
                progress.attempt(retrying=bool(attempts.failures or attempts.quality_escalations))
                on_text = progress.delta if progress.streaming else None
            try:
                reply = await self._models.complete(
                    tier, messages, min(tier.timeout_s, remaining), on_text=on_text
                )
            except ModelError as exc:
                trace.model_call(
                    tier=tier.name,
                    model=tier.model,
                    attempt=attempt,
                    outcome=exc.kind,
                    error=str(exc)[:200],
                    retry_after_s=exc.retry_after_s,
                )
                wait = exc.retry_after_s
                left = deadline - time.monotonic()
                if (
                    exc.kind == "ratelimited"
                    and attempt == 1
                    and wait is not None
                    and wait < left - 0.5
                ):
                    await asyncio.sleep(wait)  # honour Retry-After when it fits the deadline
                    continue
                if exc.kind != "ratelimited":
                    breaker.record_failure()
                elif wait:
                    # No point calling before the provider's Retry-After (a 429 storm must
                    # not cost every question a round trip).
                    breaker.hold_off(wait)
                attempts.failures.append(exc.kind)
                return None
            breaker.record_success()
            attempts.cost_usd += reply.cost_usd
            trace.model_call(
                tier=tier.name,
                model=tier.model,
                attempt=attempt,
                outcome="ok",
                classifications=sorted({h.chunk.classification for h in sources}),
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_usd=reply.cost_usd,
                latency_ms=round(reply.latency_ms, 1),
                first_token_ms=_round(reply.first_token_ms),
            )
            return reply.text
        return None

    def _plan(self, text: str, hits: list[SearchHit]) -> RoutePlan:
        cheapest = self.config.tiers[0]
        count = self._models.count_tokens
        prices = []
        for strength, tier in enumerate(self.config.tiers):
            in_price, out_price = self._models.prices(tier)
            prices.append(
                TierPrice(
                    tier.name,
                    in_price,
                    out_price,
                    tier.max_output_tokens,
                    strength,
                    tier.allowed_classifications,
                )
            )
        overhead = count(cheapest, self.config.system_prompt + text) + 40
        return plan_route(
            RoutingInput(
                question=text,
                retrieval_scores=tuple(h.score for h in hits),
                distinct_documents=len({h.chunk.document_id for h in hits}),
                context_tokens_by_source=tuple(count(cheapest, h.chunk.text) + 12 for h in hits),
                prompt_overhead_tokens=overhead,
                classifications=tuple(h.chunk.classification for h in hits),
            ),
            prices,
            max_cost_usd=self.config.max_cost_per_request_usd,
        )

    async def _fallback(
        self, text: str, hits: list[SearchHit], attempts: _Attempts, notices: list[Notice]
    ) -> Answer:
        """Every model tier failed or was unusable: quote the sources instead."""
        reasons = []
        if any(kind in ("unavailable", "timeout", "bad_response") for kind in attempts.failures):
            reasons.append(_notice(NoticeCode.MODEL_UNAVAILABLE))
        if "ratelimited" in attempts.failures:
            reasons.append(_notice(NoticeCode.MODEL_RATELIMITED))
        if "uncited" in attempts.failures:
            reasons.append(_notice(NoticeCode.CITATIONS_MISSING))
        answer = await self.extractive(text, hits, Mode.DEGRADED, [*notices, *reasons])
        answer.cost_usd = attempts.cost_usd
        return answer

    async def extractive(
        self, text: str, hits: list[SearchHit], mode: Mode, notices: list[Notice]
    ) -> Answer:
        sources = [h.chunk.text for h in hits]
        extracted = extract_answer(text, sources, relevance=await self._relevance(text, sources))
        if extracted.text:
            check = check_citations(extracted.text, len(hits))
            return Answer(
                request_id="",
                mode=mode,
                text=check.text,
                citations=_citations(check.cited, hits),
                notices=[*notices, _notice(NoticeCode.EXTRACTIVE_ONLY)],
                tier="extractive",
            )
        listing = sources_only([h.chunk.title for h in hits])
        check = check_citations(listing, len(hits))
        return Answer(
            request_id="",
            mode=Mode.DEGRADED,
            text=check.text,
            citations=_citations(check.cited, hits),
            notices=[*notices, _notice(NoticeCode.SOURCES_ONLY)],
            tier="sources",
        )

    async def _relevance(self, question: str, sources: list[str]) -> dict[str, float]:
        """Cosine similarity of each sentence of the sources to the question; empty when
        there is no embedder or it fails (the lexical score still ranks). Sentence vectors
        are kept (LRU): the same popular passages come back question after question."""
        if self._embed is None:
            return {}
        sentences = list(dict.fromkeys(s for source in sources for s in split_sentences(source)))
        if not sentences:
            return {}
        missing = [s for s in sentences if s not in self._sentence_vectors]
        try:
            question_vector, *vectors = await self._embed([question, *missing])
        except Exception:  # a missing nicety, never a failed answer
            return {}
        for sentence, vector in zip(missing, vectors, strict=True):
            self._sentence_vectors[sentence] = array("f", vector)
        out = {}
        for sentence in sentences:
            self._sentence_vectors.move_to_end(sentence)
            vector = self._sentence_vectors[sentence]
            out[sentence] = sum(a * b for a, b in zip(question_vector, vector, strict=True))
        while len(self._sentence_vectors) > SENTENCE_VECTORS_KEPT:
            self._sentence_vectors.popitem(last=False)
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _citations(cited: tuple[int, ...], sources: list[SearchHit]) -> list[Citation]:
    out = []
    for n, original in enumerate(cited, start=1):
        chunk = sources[original - 1].chunk
        out.append(
            Citation(
                n=n,
                chunk_id=chunk.chunk_id,
                document_id=chunk.document_id,
                title=chunk.title,
                source=chunk.source,
                page=chunk.page,
                url=None,
                classification=chunk.classification,
            )
        )
    return out
