"""OpenTelemetry: one span per stage and per model call, from real answers; checked with
the SDK's in-memory exporter, and over OTLP/HTTP to a local receiver when
OTEL_EXPORTER_OTLP_ENDPOINT is set. Without it, nothing is exported and no exporter exists."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from adapters.observability.otel import OtelTraceExporter
from bot.settings import Settings
from bot.wiring import build_services
from core.answering.types import Asker, Question
from tests.support.model_server import ModelServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.service import running
from tests.support.tiers import KEY_ENV, tiers

JORDAN = "jordan.kim@harborlight.example"
QUESTION = "What portal address do I enter in GlobalProtect?"


@pytest.fixture(scope="module")
def models() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


def with_tiers(settings: Settings, url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    return Settings(data_dir=settings.data_dir, models={"tiers": tiers(url)})


async def test_spans_per_stage_and_model_call(
    demo_settings: Settings, models: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    models.reset()
    models.script("fast", "500")  # a failed call, then the strong tier answers
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = with_tiers(demo_settings, models.url, monkeypatch)
    sink = OtelTraceExporter(provider)
    services = await build_services(settings, trace_sinks=[sink])
    try:
        answer = await services.answers.answer(Question(QUESTION, Asker(JORDAN)))
    finally:
        await services.close()
        sink.close()  # the spans are built on the sink's worker thread
    trace = answer.trace
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["answerdesk.answer"]
    assert root.kind == SpanKind.SERVER
    assert root.attributes["answerdesk.request_id"] == answer.request_id
    assert root.attributes["answerdesk.mode"] == "degraded"
    assert root.attributes["answerdesk.tier"] == "strong"
    assert list(root.attributes["answerdesk.notices"]) == ["fallback_tier"]
    # Stage offsets and durations are recorded to 0.01 ms, so a stage may end up to ~0.02 ms
    # past the recorded latency; the root then ends with it (nested spans, below).
    assert (root.end_time - root.start_time) / 1e6 == pytest.approx(trace["latency_ms"], abs=0.02)

    stage_names = set(trace["stages"])
    assert {"policy", "embed", "retrieval", "routing", "generation"} <= stage_names
    for name, stage in trace["stages"].items():
        span = spans[f"answerdesk.{name}"]
        assert span.parent.span_id == root.context.span_id
        assert span.context.trace_id == root.context.trace_id
        assert span.attributes["answerdesk.request_id"] == answer.request_id
        assert (span.start_time - root.start_time) / 1e6 == pytest.approx(
            stage["start_ms"], abs=0.01
        )
        assert (span.end_time - span.start_time) / 1e6 == pytest.approx(stage["ms"], abs=0.01)
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time
    routing = spans["answerdesk.routing"]
    assert routing.attributes["answerdesk.routing.reason"] == trace["stages"]["routing"]["reason"]

    failed, ok = trace["model_calls"]
    generation = spans["answerdesk.generation"]
    calls = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert [s.name for s in calls] == ["chat fast", "chat strong"]
    for span, call in zip(calls, (failed, ok), strict=True):
        assert span.kind == SpanKind.CLIENT
        assert span.parent.span_id == generation.context.span_id
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.provider.name"] == "openai"
        assert span.attributes["gen_ai.request.model"] == call["tier"]
        assert generation.start_time <= span.start_time <= span.end_time
    assert calls[0].status.status_code == StatusCode.ERROR
    assert calls[0].attributes["error.type"] == "unavailable"
    assert calls[1].attributes["gen_ai.usage.input_tokens"] == ok["input_tokens"]
    assert calls[1].attributes["gen_ai.usage.output_tokens"] == ok["output_tokens"]
    assert (calls[1].end_time - calls[1].start_time) / 1e6 == pytest.approx(
        ok["latency_ms"], abs=0.01
    )
    assert "sk-test" not in repr([dict(s.attributes) for s in exporter.get_finished_spans()])


async def test_otlp_export_when_the_endpoint_is_set(
    demo_settings: Settings, models: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    models.reset()
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "answerdesk-test")
        settings = with_tiers(demo_settings, models.url, monkeypatch)
        async with running(settings) as (_url, services):
            assert services.telemetry is not None
            answer = await services.answers.answer(Question(QUESTION, Asker(JORDAN)))
        # Closing the service flushed the batch over HTTP.
        deadline = time.monotonic() + 10
        while not any(s["name"] == "answerdesk.answer" for s in receiver.spans):
            assert time.monotonic() < deadline, "no spans reached the OTLP receiver"
            time.sleep(0.05)
    names = {s["name"] for s in receiver.spans}
    assert {"answerdesk.answer", "answerdesk.retrieval", "chat fast"} <= names
    root = next(s for s in receiver.spans if s["name"] == "answerdesk.answer")
    assert root["attributes"]["answerdesk.request_id"] == answer.request_id
    chat = next(s for s in receiver.spans if s["name"] == "chat fast")
    assert chat["trace_id"] == root["trace_id"]
    assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert receiver.resources[0]["service.name"] == "answerdesk-test"


async def test_no_endpoint_no_exporter(demo_settings: Settings) -> None:
    async with running(demo_settings) as (_url, services):
        assert services.telemetry is None


def test_a_full_worker_drops_traces_instead_of_growing() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sink = OtelTraceExporter(provider, max_pending=0)
    sink.submit({"request_id": "x", "created_at": time.time(), "latency_ms": 1.0})
    sink.close()
    assert sink.dropped == 1 and exporter.get_finished_spans() == ()
