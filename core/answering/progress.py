"""Progress of an answer in the making (ARCHITECTURE §7a): the streaming contract.

``AnswerService.answer(question, progress=sink)`` runs the same flow as without a sink and
reports, in this order:

- status steps (``Progress(status="Searching the documents…")``), a handful per answer;
- text deltas from the answering model (``Progress(delta="…")``): only the model's answer
  text, never its reasoning or tool calls, and only from the audience-safe context the
  flow gave it. Cache hits, extractive answers, clarifying questions, hand-offs and
  refusals send none;
- ``Progress(restart=True)`` when the draft streamed so far is void because another
  attempt takes over (the model failed mid-answer, or its draft failed the citation check
  and a stronger tier writes a new one); deltas after it start a new draft;

and then returns the final ``Answer`` exactly as without a sink: citations checked and
renumbered, notices, mode. The final answer is always the one to show. When it differs
from what was streamed (markers renumbered, a model's own source list removed, a draft
replaced after a restart, a fallback after a failure mid-answer), it carries the notice
``revised_after_check``, so a surface can say the draft was revised.

Delivery: the sink is called in order, one call at a time. A slow sink never slows the
answer: deltas that arrive while it is busy are joined into one call. ``answer()`` returns
after the sink has had every step (or after ``DRAIN_TIMEOUT_S``, when it hangs). A sink that
raises gets no more steps for that answer; the answer itself is unaffected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from core.answering.notices import notice
from core.answering.types import Answer, NoticeCode
from core.tasks import cancel

log = structlog.get_logger()

DRAIN_TIMEOUT_S = 10.0

SEARCHING = "Searching the documents…"
WRITING = "Writing the answer…"
RETRYING = "Trying another model…"


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of an answer in the making: a status, a text delta, or a restart."""

    status: str = ""
    delta: str = ""
    restart: bool = False


ProgressSink = Callable[[Progress], Awaitable[None]]


class ProgressReporter:
    """Feeds one answer's steps to a sink without ever waiting for it, tracks the draft the
    sink has been shown, and times the first status and the first delta.

    Without a sink it only keeps the timings, so ``answer()`` behaves exactly as before."""

    def __init__(self, sink: ProgressSink | None) -> None:
        self._sink = sink
        self._started = time.perf_counter()
        self._queue: asyncio.Queue[Progress | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._broken = False
        self.draft = ""  # the text streamed since the last restart
        self.deltas = 0
        self.restarts = 0
        self.first_status_ms: float | None = None
        self.first_delta_ms: float | None = None

    @property
    def streaming(self) -> bool:
        """Whether anyone listens for deltas (the model is then asked to stream)."""
        return self._sink is not None

    def status(self, text: str) -> None:
        if self.first_status_ms is None:
            self.first_status_ms = self._elapsed_ms()
        self._emit(Progress(status=text))

    def delta(self, text: str) -> None:
        if not text:
            return
        if self.first_delta_ms is None:
            self.first_delta_ms = self._elapsed_ms()
        self.deltas += 1
        self.draft += text
        self._emit(Progress(delta=text))

    def attempt(self, retrying: bool) -> None:
        """A model attempt begins: a draft shown so far is void; ``retrying`` says an
        earlier attempt failed or was rejected."""
        if self.draft:
            self.restarts += 1
            self.draft = ""
            self._emit(Progress(restart=True))
        elif retrying:
            self.status(RETRYING)

    def finish(self, answer: Answer) -> None:
        """Mark the final answer as revised when it is not what the sink was shown."""
        if not self.deltas:
            return
        if self.restarts or answer.text.strip() != self.draft.strip():
            answer.notices.append(notice(NoticeCode.REVISED_AFTER_CHECK))

    def summary(self, total_ms: float) -> dict[str, Any]:
        """For the trace: when the first status and first text were ready, and the total."""
        return {
            "first_status_ms": _round(self.first_status_ms),
            "first_delta_ms": _round(self.first_delta_ms),
            "total_ms": _round(total_ms),
            "deltas": self.deltas,
            "restarts": self.restarts,
            "sink": self._sink is not None,
        }

    async def drain(self) -> None:
        """Wait until the sink has had every step (bounded by DRAIN_TIMEOUT_S)."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), DRAIN_TIMEOUT_S)
        except TimeoutError:
            log.warning("progress sink too slow; the final answer goes ahead")
            await cancel(self._task)

    def abandon(self) -> None:
        """Stop delivering (an answer cancelled midway leaves no task behind)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _emit(self, step: Progress) -> None:
        if self._sink is None or self._broken:
            return
        self._queue.put_nowait(step)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._deliver(self._sink))

    async def _deliver(self, sink: ProgressSink) -> None:
        held: list[Progress | None] = []  # a step taken out while joining deltas
        while True:
            step = held.pop() if held else await self._queue.get()
            if step is None:
                return
            # Deltas queued while the sink was busy go out as one.
            while step.delta and not self._queue.empty():
                following = self._queue.get_nowait()
                if following is None or not following.delta:
                    held.append(following)
                    break
                step = Progress(delta=step.delta + following.delta)
            await self._send(sink, step)

    async def _send(self, sink: ProgressSink, step: Progress) -> None:
        if self._broken:
            return
        try:
            await sink(step)
        except Exception as exc:  # a surface's trouble never becomes the answer's
            self._broken = True
            log.warning("progress sink failed; no more progress", error=type(exc).__name__)

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
