"""Per-request traces: what happened at each stage, and why (ARCHITECTURE §6).

The recorder is plain data collection; the sink (an adapter) stores traces without ever
blocking or failing the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import structlog

log = structlog.get_logger()


class TraceSink(Protocol):
    def submit(self, trace: dict[str, Any]) -> None:
        """Accept a finished trace for storage. Never blocks, never raises."""
        ...


class TraceRecorder:
    def __init__(self, request_id: str) -> None:
        self._started = time.perf_counter()
        self.data: dict[str, Any] = {"request_id": request_id, "stages": {}, "model_calls": []}

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a stage; the yielded dict holds the stage's own facts. `start_ms` is its
        offset from the request's start, so exporters can place it on a timeline."""
        details: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            yield details
        finally:
            details["start_ms"] = round((started - self._started) * 1000, 2)
            details["ms"] = round((time.perf_counter() - started) * 1000, 2)
            self.data["stages"][name] = details

    def set(self, **facts: Any) -> None:
        self.data.update(facts)

    def model_call(self, **facts: Any) -> None:
        """Record a finished model call; `end_ms` is when it ended (offset from the start)."""
        self.data["model_calls"].append({**facts, "end_ms": round(self.elapsed_ms(), 2)})

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


class NullTraceSink:
    def submit(self, trace: dict[str, Any]) -> None:
        return None


class FanOutSink:
    """Hands each finished trace to several sinks (storage, metrics, span export); one
    failing sink never keeps the trace from the others."""

    def __init__(self, *sinks: TraceSink) -> None:
        self.sinks = sinks

    def submit(self, trace: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink.submit(trace)
            except Exception:  # the sink broke its contract; the answer must not notice
                log.warning("trace sink failed", sink=type(sink).__name__, exc_info=True)
