"""Prometheus metrics. Request metrics come from finished traces (this is a TraceSink);
live readings (breakers, ticket queue, trace buffer) are taken when /metrics is scraped.

Label values are bounded: platforms, stages and notice codes are names the code chooses
(anything else becomes `other`), tiers are the configured ones, and no label ever carries
a user, a question or a request id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.conversation.queue import BusyReason, QueueState

log = structlog.get_logger()

# Seconds; SLO latency targets should sit on a bucket boundary so that alert rules can
# count "slower than the target" exactly (deploy/prometheus/answerdesk-alerts.yaml).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
QUEUE_BUCKETS = (0, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
COST_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
MODES = {"answer", "degraded", "clarify", "handoff", "refused"}
CACHE = {"hit", "miss", "bypass"}
CALL_OUTCOMES = {"ok", "timeout", "ratelimited", "unavailable", "bad_response"}
BREAKER_STATES = ("closed", "open", "half_open")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _name(value: Any) -> str:
    """A code-chosen name (platform, stage, notice code), or `other`."""
    text = str(value or "").strip().lower()
    return text if _NAME.match(text) else "other"


@dataclass(slots=True)
class LiveReadings:
    """What is read at scrape time rather than counted as it happens."""

    breakers: dict[str, str] = field(default_factory=dict)  # tier → state
    tickets: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, state)
    # Chat messages about tickets waiting in the outbox, by delivery state.
    ticket_messages: dict[str, int] = field(default_factory=dict)
    trace_buffer: int = 0
    traces_spilled: int = 0
    answer_queue: QueueState | None = None


class _LiveCollector(Collector):
    def __init__(self) -> None:
        self.readings = LiveReadings()

    def collect(self) -> Iterable[Metric]:
        r = self.readings
        breaker = GaugeMetricFamily(
            "answerdesk_breaker_state",
            "Circuit breaker per model tier: 1 for its current state",
            labels=["tier", "state"],
        )
        for tier, state in sorted(r.breakers.items()):
            for candidate in BREAKER_STATES:
                breaker.add_metric([tier, candidate], 1.0 if state == candidate else 0.0)
        yield breaker
        tickets = GaugeMetricFamily(
            "answerdesk_tickets", "Tickets by provider and state", labels=["provider", "state"]
        )
        for (provider, state), count in sorted(r.tickets.items()):
            tickets.add_metric([_name(provider), _name(state)], float(count))
        yield tickets
        messages = GaugeMetricFamily(
            "answerdesk_ticket_messages",
            "Chat messages about tickets (keys, agents' replies) by outbox delivery state",
            labels=["state"],
        )
        for state, count in sorted(r.ticket_messages.items()):
            messages.add_metric([_name(state)], float(count))
        yield messages
        yield GaugeMetricFamily(
            "answerdesk_trace_buffer_depth",
            "Traces waiting in memory to be written to the database",
            value=float(r.trace_buffer),
        )
        yield CounterMetricFamily(
            "answerdesk_traces_spilled",
            "Traces the database refused at shutdown, spilled to the spill file",
            value=float(r.traces_spilled),
        )
        q = r.answer_queue
        if q is not None:
            yield from _queue_gauges(q)


def _queue_gauges(q: QueueState) -> Iterable[Metric]:
    gauges = (
        ("answer_queue_depth", "Questions waiting for an answer slot", q.waiting),
        ("answer_queue_max_waiting", "Questions that may wait (answer_queue)", q.max_waiting),
        ("answers_in_flight", "Answers being worked on", q.in_flight),
        ("answer_slots", "Answers worked on at once at most", q.max_concurrent),
        (
            "answer_queue_estimated_wait_seconds",
            "How long a question arriving now would wait for a slot",
            q.estimated_wait_s,
        ),
        ("answer_queue_max_wait_seconds", "The longest wait allowed", q.max_wait_s),
        (
            "answer_queue_saturated",
            "1 when a question arriving now would be set aside (/readyz answers 503)",
            q.saturated is not None,
        ),
    )
    for name, help_text, value in gauges:
        yield GaugeMetricFamily(f"answerdesk_{name}", help_text, value=float(value))


class ServiceMetrics:
    def __init__(self, tiers: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._tiers = {*tiers, "extractive", "sources"}
        r = self.registry
        self.requests = Counter(
            "answerdesk_requests",
            "Answered requests",
            ["platform", "mode", "tier", "cache"],
            registry=r,
        )
        self.duration = Histogram(
            "answerdesk_request_duration_seconds",
            "End-to-end answer latency",
            ["platform", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_text = Histogram(
            "answerdesk_time_to_first_text_seconds",
            "Time to the first visible answer text (the whole answer until streaming)",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "answerdesk_stage_duration_seconds",
            "Time spent in each stage of the answer flow",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "answerdesk_model_tokens",
            "Model tokens by tier and direction (input, output)",
            ["tier", "direction"],
            registry=r,
        )
        self.cost = Counter(
            "answerdesk_cost_usd", "Model spend in US dollars by tier", ["tier"], registry=r
        )
        self.request_cost = Histogram(
            "answerdesk_request_cost_usd",
            "Model spend per request in US dollars",
            buckets=COST_BUCKETS,
            registry=r,
        )
        self.model_calls = Counter(
            "answerdesk_model_calls",
            "Model calls by tier and outcome",
            ["tier", "outcome"],
            registry=r,
        )
        self.notices = Counter(
            "answerdesk_notices", "Notices shown to users, by code", ["code"], registry=r
        )
        self.dedupe = Counter(
            "answerdesk_dedupe_hits",
            "Platform events delivered again and ignored (retries, other replicas)",
            ["platform"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "answerdesk_answer_queue_wait_seconds",
            "How long questions waited for an answer slot",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.busy = Counter(
            "answerdesk_busy_refusals",
            "Questions set aside (the asker told the service is busy), by reason",
            ["reason"],
            registry=r,
        )
        self._live = _LiveCollector()
        r.register(self._live)

    def add_tiers(self, tiers: Sequence[str]) -> None:
        """The tiers of a release: labelled by name, like the configuration's."""
        self._tiers.update(tiers)

    def _tier(self, value: Any) -> str:
        if value is None:
            return "none"
        return str(value) if str(value) in self._tiers else "other"

    def submit(self, trace: dict[str, Any]) -> None:
        """A finished trace (TraceSink). Never raises: metrics must not cost an answer."""
        try:
            self._observe(trace)
        except Exception as exc:
            log.warning("metrics from a trace failed", error=type(exc).__name__)

    def _observe(self, trace: dict[str, Any]) -> None:
        platform = _name(trace.get("platform"))
        mode = str(trace.get("mode"))
        mode = mode if mode in MODES else "other"
        cache = str((trace.get("cache") or {}).get("status") or "bypass")
        tier = self._tier(trace.get("tier"))
        self.requests.labels(platform, mode, tier, cache if cache in CACHE else "other").inc()
        seconds = float(trace.get("latency_ms") or 0) / 1000
        self.duration.labels(platform, mode).observe(seconds)
        first = trace.get("first_text_ms")
        self.first_text.labels(platform).observe(seconds if first is None else first / 1000)
        for name, stage in (trace.get("stages") or {}).items():
            self.stage.labels(_name(name)).observe(float(stage.get("ms") or 0) / 1000)
        for call in trace.get("model_calls") or []:
            call_tier = self._tier(call.get("tier"))
            outcome = str(call.get("outcome") or "")
            if outcome.startswith("skipped"):
                outcome = "skipped"
            self.model_calls.labels(
                call_tier, outcome if outcome in CALL_OUTCOMES | {"skipped"} else "other"
            ).inc()
            self.tokens.labels(call_tier, "input").inc(int(call.get("input_tokens") or 0))
            self.tokens.labels(call_tier, "output").inc(int(call.get("output_tokens") or 0))
            self.cost.labels(call_tier).inc(float(call.get("cost_usd") or 0))
        self.request_cost.observe(float(trace.get("cost_usd") or 0))
        for code in trace.get("notices") or []:
            self.notices.labels(_name(code)).inc()

    def waited(self, seconds: float) -> None:
        """A question got an answer slot after ``seconds`` (QueueObserver)."""
        self.queue_wait.observe(seconds)

    def refused(self, reason: BusyReason) -> None:
        """A question was set aside: the replica was busy (QueueObserver)."""
        self.busy.labels(_name(reason.value)).inc()

    def dedupe_hit(self, platform: str) -> None:
        self.dedupe.labels(_name(platform)).inc()

    def render(self, readings: LiveReadings) -> bytes:
        """The exposition text, with the live readings taken just now."""
        self._live.readings = readings
        return generate_latest(self.registry)
