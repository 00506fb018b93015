"""OpenTelemetry spans from finished answer traces: a root span per request, one child span
per stage at its real start time and duration, and one span per model call named and
attributed after the GenAI semantic conventions (`chat <model>`, `gen_ai.request.model`,
`gen_ai.usage.input_tokens`, …). Spans are built from the finished trace on a worker
thread (about 0.7 ms a trace: benchmarks/observability.py), so the event loop and the answer
never wait for them; the SDK's batch processor exports them from its own thread.

The composition root builds this only when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; otherwise nothing of this module runs at all.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

log = structlog.get_logger()
_MAX_ATTRIBUTE = 4096


def tracer_provider_from_environment() -> TracerProvider:
    """An SDK provider exporting over OTLP, configured by the standard OTEL_* variables
    (endpoint, headers; protocol `http/protobuf` by default, `grpc` with
    OTEL_EXPORTER_OTLP_PROTOCOL=grpc)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    name = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "answerdesk"}
    provider = TracerProvider(resource=Resource.create(name))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class OtelTraceExporter:
    """A TraceSink turning each finished trace into spans on `provider`, on one worker
    thread. Beyond `max_pending` traces waiting for it, traces are dropped (and counted)
    rather than letting memory grow."""

    def __init__(self, provider: TracerProvider, max_pending: int = 10_000) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("answerdesk")
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otel-spans")
        self._max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self.dropped = 0

    def submit(self, trace: dict[str, Any]) -> None:
        with self._lock:
            if self._pending >= self._max_pending:
                self.dropped += 1
                return
            self._pending += 1
        self._worker.submit(self._export_one, trace)

    def close(self) -> None:
        """Build what is waiting, then flush the batches (blocking: call off the loop)."""
        self._worker.shutdown(wait=True)
        self.provider.shutdown()

    def _export_one(self, trace: dict[str, Any]) -> None:
        try:
            self._export(trace)
        except Exception as exc:  # a malformed trace costs its spans, nothing else
            log.warning("span export failed", error=type(exc).__name__)
        finally:
            with self._lock:
                self._pending -= 1

    def _export(self, trace: dict[str, Any]) -> None:
        end = int(float(trace["created_at"]) * 1e9)
        start = end - int(float(trace.get("latency_ms") or 0) * 1e6)
        request_id = str(trace["request_id"])
        root = self._tracer.start_span(
            "answerdesk.answer",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes=_attributes(
                {
                    "request_id": request_id,
                    "platform": trace.get("platform"),
                    "mode": trace.get("mode"),
                    "tier": trace.get("tier"),
                    "model": trace.get("model"),
                    "release": trace.get("release"),
                    "cost_usd": trace.get("cost_usd"),
                    "notices": trace.get("notices"),
                    "cache": trace.get("cache"),
                    "audience": trace.get("audience"),
                },
                "answerdesk",
            ),
        )
        if trace.get("error"):
            root.set_status(Status(StatusCode.ERROR, str(trace["error"])))
            root.set_attribute("error.type", str(trace["error"]))
        context = trace_api.set_span_in_context(root)
        generation = None
        latest = end  # the root ends last even when the stages' rounded times overshoot
        for name, stage in (trace.get("stages") or {}).items():
            stage_start = start + int(float(stage.get("start_ms") or 0) * 1e6)
            span = self._tracer.start_span(
                f"answerdesk.{name}",
                context=context,
                start_time=stage_start,
                attributes={
                    "answerdesk.request_id": request_id,
                    **_attributes(
                        {k: v for k, v in stage.items() if k not in ("ms", "start_ms")},
                        f"answerdesk.{name}",
                    ),
                },
            )
            if stage.get("error"):
                span.set_status(Status(StatusCode.ERROR, str(stage["error"])))
            stage_end = stage_start + int(float(stage.get("ms") or 0) * 1e6)
            latest = max(latest, stage_end)
            span.end(end_time=stage_end)
            if name == "generation":
                generation = span
        parent = trace_api.set_span_in_context(generation) if generation else context
        for call in trace.get("model_calls") or []:
            self._model_call(call, request_id, start, parent)
        root.end(end_time=latest)

    def _model_call(
        self, call: Mapping[str, Any], request_id: str, start: int, parent: Any
    ) -> None:
        model = str(call.get("model") or "unknown")
        provider, _, name = model.rpartition("/")
        call_end = start + int(float(call.get("end_ms") or 0) * 1e6)
        call_start = call_end - int(float(call.get("latency_ms") or 0) * 1e6)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider or "unknown",
            "gen_ai.request.model": name,
            "answerdesk.request_id": request_id,
            "answerdesk.tier": str(call.get("tier")),
            "answerdesk.outcome": str(call.get("outcome")),
        }
        if call.get("attempt") is not None:
            attributes["answerdesk.attempt"] = int(call["attempt"])
        if call.get("input_tokens") is not None:
            attributes["gen_ai.usage.input_tokens"] = int(call["input_tokens"])
        if call.get("output_tokens") is not None:
            attributes["gen_ai.usage.output_tokens"] = int(call["output_tokens"])
        if call.get("cost_usd") is not None:
            attributes["answerdesk.cost_usd"] = float(call["cost_usd"])
        span = self._tracer.start_span(
            f"chat {name}",
            context=parent,
            kind=SpanKind.CLIENT,
            start_time=call_start,
            attributes=attributes,
        )
        if call.get("outcome") != "ok":
            span.set_attribute("error.type", str(call.get("outcome")))
            span.set_status(Status(StatusCode.ERROR, str(call.get("outcome"))))
        span.end(end_time=call_end)


def _attributes(facts: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """OTel attribute values are scalars or lists of one scalar type: other values (nested
    facts, mixed lists) travel as JSON text."""
    out: dict[str, Any] = {}
    for key, value in facts.items():
        if value is None:
            continue
        name = f"{prefix}.{key}"
        if isinstance(value, bool | int | float | str):
            out[name] = value if not isinstance(value, str) else value[:_MAX_ATTRIBUTE]
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            out[name] = [v[:_MAX_ATTRIBUTE] for v in value]
        elif isinstance(value, list | tuple) and not value:
            out[name] = []
        else:
            out[name] = json.dumps(value, default=str, ensure_ascii=False)[:_MAX_ATTRIBUTE]
    return out
