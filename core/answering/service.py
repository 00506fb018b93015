"""The answer flow (ARCHITECTURE §2): Question → permissions → retrieval → routing →
generation → citation check → Answer. Every step records into the trace, and every failure
still ends in an Answer with a visible notice: no exception reaches a chat user.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any

import structlog

from core.answering.config import AnswerConfig
from core.answering.gate import assess, clarifying_question
from core.answering.generation import TierGenerator
from core.answering.memory import ConversationMemory, Turn, rewrite_follow_up
from core.answering.model import ModelClient
from core.answering.notices import notice
from core.answering.policy import PolicyGate
from core.answering.progress import SEARCHING, WRITING, ProgressReporter, ProgressSink
from core.answering.redaction import redact_for_trace, redact_pii
from core.answering.tracing import TraceRecorder, TraceSink
from core.answering.types import Answer, Citation, Mode, Notice, NoticeCode, Question
from core.cache import ContextChunk, SemanticCache
from core.directory import Directory, Resolved
from core.handoff.texts import handoff_sentence
from core.principals import PUBLIC, Access
from core.retrieval import Retriever, SearchHit, SearchResult
from core.tickets import TicketProvider, TicketRequest

log = structlog.get_logger()


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


class AnswerService:
    def __init__(
        self,
        retriever: Retriever,
        directory: Directory,
        models: ModelClient,
        traces: TraceSink,
        config: AnswerConfig,
        *,
        cache: SemanticCache | None = None,
        tickets: TicketProvider | None = None,
        memory: ConversationMemory | None = None,
        versions: Any = None,
    ) -> None:
        self._retriever = retriever
        self._directory = directory
        self._models = models
        self._traces = traces
        self._cache = cache
        self._tickets = tickets
        self._memory = memory
        self._versions = versions  # document id → current version (for the cache)
        self.config = config
        self._generator = TierGenerator(models, config, embed=retriever.embed_texts)
        self._policy = PolicyGate(config.policy, self._encode_many)

    async def warm_up(self) -> None:
        """What the first question would otherwise load: the policy gate's parts."""
        await self._policy.warm_up()

    def breaker_states(self) -> dict[str, str]:
        return self._generator.breaker_states()

    async def answer(self, question: Question, progress: ProgressSink | None = None) -> Answer:
        """The answer to ``question``. With ``progress`` the same flow also reports status
        steps and the model's text as it is written (core/answering/progress.py)."""
        request_id = new_request_id()
        trace = TraceRecorder(request_id)
        reporter = ProgressReporter(progress)
        try:
            answer = await self._answer_reporting(question, request_id, trace, reporter)
        finally:
            reporter.abandon()  # nothing left running, even when the answer was cancelled
        return answer

    async def _answer_reporting(
        self,
        question: Question,
        request_id: str,
        trace: TraceRecorder,
        reporter: ProgressReporter,
    ) -> Answer:
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                answer = await self._answer(question, trace, reporter)
            except Exception as exc:  # the last line of defence: degrade, never raise
                log.exception("answer failed", error=type(exc).__name__)
                answer = Answer(
                    request_id=request_id,
                    mode=Mode.DEGRADED,
                    text="Something went wrong while answering. Please try again, or ask for "
                    "a human.",
                    notices=[
                        Notice("internal_error", "An internal error interrupted this answer.")
                    ],
                )
                trace.set(error=type(exc).__name__)
            answer.request_id = request_id
            reporter.finish(answer)
            answer.latency_ms = trace.elapsed_ms()
            trace.set(progress=reporter.summary(answer.latency_ms))
            self._finish_trace(question, answer, trace)
            log.info(
                "answered",
                mode=str(answer.mode),
                tier=answer.tier,
                latency_ms=round(answer.latency_ms, 1),
                notices=[n.code for n in answer.notices],
            )
            await reporter.drain()  # the sink has had every step before the final answer
        return answer

    async def _answer(
        self, question: Question, trace: TraceRecorder, progress: ProgressReporter
    ) -> Answer:
        text = question.text.strip()
        vector: list[float] | None = None
        with trace.stage("policy") as stage:
            refusal = self._precheck(text)
            redacted = redact_pii(text) if self.config.pii_redaction else None
            safe_text = redacted.text if redacted else text
            checked = None
            if not refusal:
                # The question's embedding serves the examples here and retrieval later.
                if self._policy.needs_embedding:
                    vector = await self._encode(safe_text, stage)
                checked = await self._policy.check(text, vector, question.locale)
            topic = checked.topic.rule if checked and checked.topic else None
            human = bool(checked and checked.human)
            stage.update(
                result=refusal or "ok",
                topic_rule=topic.name if topic else None,
                topic_action=topic.action if topic else None,
                asked_for_human=human,
                **(checked.to_trace() if checked else {}),
                pii_redacted=redacted.counts if redacted else "off",
                allow_tools=self.config.allow_tools,
                require_citations=self.config.require_citations,
            )
        if refusal:
            return Answer(request_id="", mode=Mode.REFUSED, text=refusal)
        if topic and topic.action == "refuse":
            return Answer(request_id="", mode=Mode.REFUSED, text=topic.message or "")

        with trace.stage("permissions") as stage:
            asker, access = await self._access(question)
            stage.update(
                asker_known=asker.known,
                asker_principals=sorted(asker.principals),
                audience=str(question.audience),
                effective_principals=sorted(access.principals),
                readers=len(access.readers),
            )
        principals = sorted(access.principals)
        if topic:
            return await self._handoff(
                question, trace, safe_text, topic.message, f"topic rule {topic.name}"
            )
        if human:
            return await self._handoff(question, trace, safe_text, None, "asked for a human")

        progress.status(SEARCHING)
        history = await self._history(question, trace)
        with trace.stage("rewrite") as stage:
            search_text = rewrite_follow_up(safe_text, history) or safe_text
            stage["rewritten"] = search_text != safe_text
            if search_text != safe_text:
                stage["search_text"] = redact_for_trace(search_text, self.config.redaction)

        with trace.stage("embed") as stage:
            stage["reused"] = vector is not None and search_text == safe_text
            if not stage["reused"]:
                vector = await self._encode(search_text, stage)

        retrieval: dict[str, Any] = {}

        async def retrieve() -> SearchResult:
            # Once per request: the cache's verification and the answer share the result.
            if "result" not in retrieval:
                if vector is None:
                    raise RuntimeError("no query embedding")
                retrieval["result"] = await self._retriever.search(
                    search_text, access, self.config.top_k, vector=vector
                )
            return retrieval["result"]

        cached = await self._from_cache(
            question, search_text, vector, asker, access, retrieve, trace
        )
        if cached is not None:
            await self._remember(question, safe_text, search_text, cached, trace)
            return cached

        with trace.stage("retrieval") as stage:
            try:
                result = await retrieve()
            except Exception as exc:
                log.warning("retrieval failed", error=type(exc).__name__)
                stage["error"] = type(exc).__name__
                answer = await self._handoff(
                    question,
                    trace,
                    safe_text,
                    "I can't search the documents right now, so I've asked a colleague to help.",
                    "retrieval unavailable",
                )
                answer.notices.insert(0, notice(NoticeCode.RETRIEVAL_UNAVAILABLE))
                answer.principals = principals
                return answer
            hits = result.hits
            stage.update(result.trace)
            stage["hits"] = [
                {
                    "chunk_id": h.chunk.chunk_id,
                    "document_id": h.chunk.document_id,
                    "classification": h.chunk.classification,
                    "score": h.score,
                    "dense_rank": h.dense_rank,
                    "lexical_rank": h.lexical_rank,
                }
                for h in hits
            ]

        with trace.stage("gate") as stage:
            decision = assess(hits, self.config.gate)
            clarified_before = any(turn.mode == Mode.CLARIFY for turn in history)
            stage.update(
                confident=decision.confident,
                reason=decision.reason,
                best=round(decision.best, 4),
                margin=None if decision.margin is None else round(decision.margin, 4),
                clarified_before=clarified_before,
            )
        if not decision.confident:
            if clarified_before:
                answer = await self._handoff(
                    question,
                    trace,
                    safe_text,
                    None,
                    f"still unclear after clarifying ({decision.reason})",
                )
            else:
                answer = Answer(request_id="", mode=Mode.CLARIFY, text=clarifying_question(hits))
            answer.principals = principals
            await self._remember(question, safe_text, search_text, answer, trace)
            return answer

        # Whether the asker could have had a fuller answer privately decides a notice only:
        # it runs while the answer is written, not before the model's first words.
        private_check = None
        if question.audience.kind != "dm":
            private_check = asyncio.create_task(
                self._private_check(search_text, asker, access, hits, vector, trace)
            )
        try:
            if not self.config.tiers:
                answer = await self._generator.extractive(search_text, hits, Mode.ANSWER, [])
                context = hits
            else:
                progress.status(WRITING)
                answer, context = await self._generator.generate(
                    question, safe_text, hits, trace, progress
                )
        finally:
            better = private_check is not None and await private_check
        if better:
            answer.notices.append(notice(NoticeCode.PRIVATE_ANSWER_AVAILABLE))
        answer.principals = principals
        await self._store_in_cache(answer, search_text, vector, context, trace)
        await self._remember(question, safe_text, search_text, answer, trace)
        return answer

    async def _encode(self, text: str, stage: dict[str, Any]) -> list[float] | None:
        try:
            return await self._retriever.encode(text)
        except Exception as exc:
            log.warning("embedding failed", error=type(exc).__name__)
            stage["embedding_error"] = type(exc).__name__
            return None

    async def _encode_many(self, texts: Sequence[str]) -> list[list[float]]:
        return list(await asyncio.gather(*(self._retriever.encode(t) for t in texts)))

    async def _history(self, question: Question, trace: TraceRecorder) -> list[Turn]:
        if self._memory is None or not question.conversation_id:
            return []
        try:
            return await self._memory.recent(
                question.conversation_id, self.config.memory_turns, self.config.memory_max_age_s
            )
        except Exception as exc:  # memory is a help, never a reason to fail
            trace.set(memory_error=type(exc).__name__)
            return []

    async def _remember(
        self,
        question: Question,
        safe_text: str,
        search_text: str,
        answer: Answer,
        trace: TraceRecorder,
    ) -> None:
        if self._memory is None or not question.conversation_id:
            return
        try:
            await self._memory.add(
                question.conversation_id,
                Turn(
                    safe_text,
                    search_text,
                    str(answer.mode),
                    trace.data["request_id"],
                    {
                        "text": answer.text,
                        "mode": str(answer.mode),
                        "citations": [asdict(c) for c in answer.citations],
                        "notices": [asdict(n) for n in answer.notices],
                    },
                ),
            )
        except Exception as exc:
            log.warning("conversation memory write failed", error=type(exc).__name__)

    async def _from_cache(
        self,
        question: Question,
        search_text: str,
        vector: list[float] | None,
        asker: Resolved,
        access: Access,
        retrieve: Callable[[], Awaitable[SearchResult]],
        trace: TraceRecorder,
    ) -> Answer | None:
        if self._cache is None or vector is None or self._versions is None:
            trace.set(cache={"status": "bypass", "reason": "no cache configured"})
            return None
        with trace.stage("cache") as stage:
            try:

                async def retrieved_context() -> list[tuple[str, str]]:
                    hits = (await retrieve()).hits
                    if not assess(hits, self.config.gate).confident:
                        return []  # a fresh answer would clarify: no cached answer either
                    return [(hit.chunk.document_id, hit.chunk.classification) for hit in hits]

                decision = await self._cache.lookup(
                    vector,
                    search_text,
                    lambda key: self._retriever.allows(access, key),
                    self._versions,
                    retrieved_context,
                )
            except Exception as exc:  # a broken cache is a miss, never an error
                log.warning("cache lookup failed", error=type(exc).__name__, exc_info=True)
                stage.update(status="miss", reason=f"cache unavailable: {type(exc).__name__}")
                trace.set(cache={"status": "miss", "reason": "cache unavailable"})
                return None
            stage.update(decision.summary(), rejected=decision.rejected)
            trace.set(cache=decision.summary())
            if decision.status != "hit" or decision.entry is None:
                return None
            entry = decision.entry
            stage.update(original_request_id=entry.request_id, similarity=decision.similarity)
            trace.set(cache_entry=entry.id)
        stored = entry.answer
        answer = Answer(
            request_id="",
            mode=Mode.ANSWER,
            text=stored["text"],
            citations=[Citation(**c) for c in stored["citations"]],
            tier=stored.get("tier"),
            model=stored.get("model"),
            principals=sorted(access.principals),
            cache={**decision.summary(), "original_request_id": entry.request_id},
        )
        if question.audience.kind != "dm":
            with trace.stage("private_check") as stage:
                try:
                    better = await self._private_answer_exists(
                        search_text, asker, access, [], vector
                    )
                except Exception as exc:  # the search is down: the hit stands, unnoticed
                    stage["error"] = type(exc).__name__
                    better = False
                stage["private_answer_available"] = better
            if better:
                answer.notices.append(notice(NoticeCode.PRIVATE_ANSWER_AVAILABLE))
        return answer

    async def _store_in_cache(
        self,
        answer: Answer,
        search_text: str,
        vector: list[float] | None,
        context: list[SearchHit],
        trace: TraceRecorder,
    ) -> None:
        answer.cache = trace.data.get("cache") or {"status": "bypass", "reason": "no cache"}
        if self._cache is None or vector is None or self._versions is None:
            return
        codes = {n.code for n in answer.notices}
        if answer.mode != Mode.ANSWER or codes & _NOT_CACHED or not answer.citations:
            trace.set(cache_store="skipped: degraded, limited or uncited answer")
            return
        if not self._cache.config.enabled:  # store() would drop it: spare the version lookup
            trace.set(cache_store=None)
            return
        try:
            versions = await self._versions(sorted({h.chunk.document_id for h in context}))
            entry_id = await self._cache.store(
                vector,
                search_text,
                {
                    "text": answer.text,
                    "citations": [asdict(c) for c in answer.citations],
                    "tier": answer.tier,
                    "model": answer.model,
                },
                [
                    ContextChunk(
                        h.chunk.chunk_id,
                        h.chunk.document_id,
                        h.chunk.acl_key,
                        versions.get(h.chunk.document_id, "gone"),
                        h.chunk.classification,
                    )
                    for h in context
                ],
                trace.data["request_id"],
            )
            trace.set(cache_store=entry_id)
        except Exception as exc:
            log.warning("cache store failed", error=type(exc).__name__)

    async def _handoff(
        self,
        question: Question,
        trace: TraceRecorder,
        safe_text: str,
        message: str | None,
        reason: str,
    ) -> Answer:
        with trace.stage("handoff") as stage:
            stage["reason"] = reason
            ref = None
            if self._tickets is not None:
                try:
                    ref = await self._tickets.create(
                        TicketRequest(
                            request_id=trace.data["request_id"],
                            conversation_id=question.conversation_id,
                            asker=question.asker.email,
                            question=safe_text,
                            reason=reason,
                            where=question.where,
                            asker_platform_id=question.asker.platform_user_id,
                        )
                    )
                except Exception as exc:
                    log.warning("ticket creation failed", error=type(exc).__name__)
                    stage["error"] = type(exc).__name__
            stage["ticket"] = ref.to_dict() if ref else None
        if ref is None:
            return Answer(
                request_id="",
                mode=Mode.HANDOFF,
                text=(message + " " if message else "")
                + "I couldn't open a ticket automatically; please contact the help desk.",
                notices=[Notice("ticket_failed", "No ticket could be created.")],
            )
        intro = message or "I've passed this to a colleague who can help."
        return Answer(
            request_id="",
            mode=Mode.HANDOFF,
            text=f"{intro} {handoff_sentence(ref)}",
            ticket=ref.to_dict(),
        )

    def _precheck(self, text: str) -> str | None:
        if not text:
            return "Please ask a question: the message was empty."
        if len(text) > self.config.max_question_chars:
            return (
                f"That question is too long ({len(text)} characters; the limit is "
                f"{self.config.max_question_chars}). Please shorten it."
            )
        return None

    async def _access(self, question: Question) -> tuple[Resolved, Access]:
        asker = await self._directory.resolve_email(question.asker.email or "")
        audience = question.audience
        if audience.kind == "dm":
            return asker, Access(asker.principals)
        if audience.kind == "public":
            return asker, Access(asker.principals, frozenset({PUBLIC}))
        members = [await self._directory.resolve_email(email) for email in audience.members]
        return asker, Access(asker.principals, *(m.principals for m in members))

    async def _private_check(
        self,
        text: str,
        asker: Resolved,
        access: Access,
        hits: list[SearchHit],
        vector: list[float] | None,
        trace: TraceRecorder,
    ) -> bool:
        with trace.stage("private_check") as stage:
            better = await self._private_answer_exists(text, asker, access, hits, vector)
            stage["private_answer_available"] = better
        return better

    async def _private_answer_exists(
        self,
        text: str,
        asker: Resolved,
        access: Access,
        shared: list[SearchHit],
        vector: list[float] | None,
    ) -> bool:
        """Would documents only the asker may read have ranked among the top hits? (The
        question's embedding is reused: embedding it again costs more than the search.)"""
        private = await self._retriever.search(
            text, Access(asker.principals), self.config.top_k, vector=vector
        )
        shared_ids = {h.chunk.chunk_id for h in shared}
        for hit in private.hits:
            if hit.chunk.chunk_id not in shared_ids and not await self._retriever.allows(
                access, hit.chunk.acl_key
            ):
                return True
        return False

    def _finish_trace(self, question: Question, answer: Answer, trace: TraceRecorder) -> None:
        trace.set(
            created_at=time.time(),
            platform=question.platform,
            asker=question.asker.email,
            audience=str(question.audience),
            conversation_id=question.conversation_id,
            question=redact_for_trace(question.text, self.config.redaction),
            redaction=self.config.redaction,
            release=self.config.release,
            mode=str(answer.mode),
            tier=answer.tier,
            model=answer.model,
            notices=[n.code for n in answer.notices],
            citations=[c.chunk_id for c in answer.citations],
            cost_usd=answer.cost_usd,
            latency_ms=round(answer.latency_ms, 2),
            principals=answer.principals,
            ticket=answer.ticket,
        )
        answer.trace = trace.data
        self._traces.submit(trace.data)


_NOT_CACHED = {
    str(NoticeCode.PRIVATE_ANSWER_AVAILABLE),
    str(NoticeCode.BUDGET_CAPPED),
    str(NoticeCode.FALLBACK_TIER),
    str(NoticeCode.DATA_BOUNDARY),
}
