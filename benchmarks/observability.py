"""What observing an answer costs: the per-trace work of the Prometheus sink and of the
OpenTelemetry span export (built from the finished trace, handed to a batch processor), and
the time to render /metrics. The traces are realistic: seven stages, two model calls.

    .venv/bin/python benchmarks/observability.py [--traces 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import parse_args
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from adapters.observability.metrics import LiveReadings, ServiceMetrics
from adapters.observability.otel import OtelTraceExporter


class _Discard(SpanExporter):
    """Takes the batches and drops them: what is measured is building and queueing spans."""

    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def make_trace(n: int) -> dict:
    stages = {}
    offset = 0.0
    for name, ms in (
        ("policy", 0.1),
        ("permissions", 0.4),
        ("embed", 9.0),
        ("cache", 2.0),
        ("retrieval", 6.0),
        ("gate", 0.05),
        ("routing", 0.3),
        ("generation", 850.0),
    ):
        stages[name] = {"start_ms": offset, "ms": ms, "result": "ok", "hits": 5}
        offset += ms
    return {
        "request_id": f"{n:016x}",
        "created_at": time.time(),
        "platform": "slack",
        "mode": "degraded" if n % 10 == 0 else "answer",
        "tier": "fast",
        "model": "openai/gpt-4o-mini",
        "release": "abc123",
        "notices": ["fallback_tier"] if n % 10 == 0 else [],
        "cost_usd": 0.0004,
        "latency_ms": offset,
        "cache": {"status": "miss", "reason": "no similar question"},
        "stages": stages,
        "model_calls": [
            {
                "tier": "fast",
                "model": "openai/gpt-4o-mini",
                "attempt": 1,
                "outcome": "timeout",
                "latency_ms": 300.0,
                "end_ms": 320.0,
            },
            {
                "tier": "strong",
                "model": "openai/gpt-4o",
                "attempt": 1,
                "outcome": "ok",
                "input_tokens": 1800,
                "output_tokens": 220,
                "cost_usd": 0.0004,
                "latency_ms": 500.0,
                "end_ms": offset,
            },
        ],
    }


def per_trace_us(submit: object, traces: list[dict]) -> float:
    started = time.perf_counter()
    for trace in traces:
        submit(trace)  # type: ignore[operator]
    return (time.perf_counter() - started) / len(traces) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20000)
    args = parse_args(parser, {"traces": 200})
    traces = [make_trace(n) for n in range(args.traces)]

    metrics = ServiceMetrics(["fast", "strong"])
    print(f"traces                : {args.traces} (8 stages, 2 model calls each)")
    print(f"prometheus sink       : {per_trace_us(metrics.submit, traces):.1f} µs per trace")
    readings = LiveReadings(breakers={"fast": "closed", "strong": "open"}, tickets={})
    renders = []
    for _ in range(50):
        started = time.perf_counter()
        body = metrics.render(readings)
        renders.append((time.perf_counter() - started) * 1000)
    renders.sort()
    print(f"/metrics render       : {renders[len(renders) // 2]:.2f} ms median, {len(body)} bytes")

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=2**16))
    exporter = OtelTraceExporter(provider, max_pending=len(traces))
    started = time.perf_counter()
    handed = per_trace_us(exporter.submit, traces)
    exporter.close()  # waits until the worker has built every span
    built = (time.perf_counter() - started) / len(traces) * 1e6
    print(f"otel sink, caller     : {handed:.1f} µs per trace (handed to the worker thread)")
    print(f"otel spans, worker    : {built:.1f} µs per trace (11 spans built and batched)")


if __name__ == "__main__":
    main()
