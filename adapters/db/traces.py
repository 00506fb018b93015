"""Trace storage that never blocks or fails an answer.

`submit` only appends to an in-memory buffer. A background task writes batches; when the
database is unavailable the batch stays buffered and is retried with backoff. At shutdown
whatever still cannot be written is appended to a spill file, which the next process loads
and writes: traces are delayed, never silently lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker, upsert_insert
from adapters.db.models import TraceRow
from core.answering.redaction import mentions_personal_data
from core.tasks import cancel

log = structlog.get_logger()
_ANNOTATION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BufferedTraceWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        spill_path: Path,
        *,
        batch_size: int = 200,
        max_buffer: int = 100_000,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        linger_s: float = 0.25,
        annotation_patience_s: float = 600.0,
    ) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine)
        self._spill = spill_path
        self._buffer: deque[dict[str, Any]] = deque()
        self._batch = batch_size
        self._max_buffer = max_buffer
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._linger = linger_s
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()  # the background task and flush() never write at once
        self._task: asyncio.Task[None] | None = None
        self.spilled = 0  # traces written to the spill file by this process
        # Later facts about a request (its ticket's key, first response, resolution), merged
        # into its trace by a background task: request id → top-level keys to set.
        self._annotations: dict[str, dict[str, Any]] = {}
        self._annotating: asyncio.Task[None] | None = None
        self._annotation_patience_s = annotation_patience_s
        self._load_spill()

    def submit(self, trace: dict[str, Any]) -> None:
        if len(self._buffer) >= self._max_buffer:
            self._spill_out([self._buffer.popleft()])  # make room without dropping anything
        self._buffer.append(trace)
        self.start()

    def start(self) -> None:
        """Start the background writer (on the running loop) if there is work for it."""
        if self._buffer:
            self._wake.set()
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no running loop: flushed at close()
                self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Write everything buffered, retrying until the timeout. True when all written."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        delay = self._retry_initial
        while self._buffer:
            if await self._write_batch():
                delay = self._retry_initial
                continue
            if loop.time() + delay > end:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)
        return True

    def annotate(self, request_id: str, patch: dict[str, Any]) -> None:
        """Set top-level keys of a request's trace, without waiting: a buffered trace is
        changed in place, a written one by a background UPDATE, retried while the trace is
        not written yet (another replica may still hold it) for `annotation_patience_s`."""
        if not all(_ANNOTATION_KEY.match(key) for key in patch):
            raise ValueError(f"trace annotation keys must be identifiers: {sorted(patch)}")
        patch = json.loads(json.dumps(patch, default=str))
        for trace in self._buffer:
            if trace.get("request_id") == request_id:
                trace.update(patch)
        # A new dict each time: a pass that merged an older one leaves this one pending.
        self._annotations[request_id] = {**self._annotations.get(request_id, {}), **patch}
        if self._annotating is None or self._annotating.done():
            with contextlib.suppress(RuntimeError):  # no running loop: written at close()
                self._annotating = asyncio.get_running_loop().create_task(self._annotate())

    async def _annotate(self) -> None:
        delay, waited = self._retry_initial, 0.0
        while await self._merge_annotations():
            if waited >= self._annotation_patience_s:
                log.warning("trace annotations not written", requests=len(self._annotations))
                self._annotations.clear()
                return
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, self._retry_max)

    async def _merge_annotations(self) -> int:
        """One pass over the pending annotations; how many are still pending."""
        for request_id, patch in list(self._annotations.items()):
            try:
                merged = await self._merge(request_id, patch)
            except Exception as exc:  # the database is down: keep it for the next pass
                log.warning("trace annotation failed, will retry", error=type(exc).__name__)
                merged = False
            if merged and self._annotations.get(request_id) is patch:
                del self._annotations[request_id]
        return len(self._annotations)

    async def _merge(self, request_id: str, patch: dict[str, Any]) -> bool:
        params: dict[str, Any] = {"request_id": request_id}
        if self._engine.dialect.name == "postgresql":
            params["patch"] = json.dumps(patch)
            merged = "CAST(CAST(data AS JSONB) || CAST(:patch AS JSONB) AS JSON)"
        else:  # json_set per key: replaces the key whole, as PostgreSQL's || does
            merged = "data"
            for index, (key, value) in enumerate(patch.items()):
                params[f"v{index}"] = json.dumps(value)
                merged = f"json_set({merged}, '$.{key}', json(:v{index}))"
        statement = text(f"UPDATE traces SET data = {merged} WHERE request_id = :request_id")
        async with self._engine.begin() as conn:
            result = await conn.execute(statement, params)
        return result.rowcount > 0

    async def close(self, timeout_s: float = 5.0) -> None:
        await cancel(self._annotating)
        await cancel(self._task)
        self._task = None
        if not await self.flush(timeout_s):
            log.error("traces not written, spilled to file", count=len(self._buffer))
            self._spill_out(list(self._buffer))
            self._buffer.clear()
        if self._annotations and await self._merge_annotations():
            log.warning("trace annotations not written", requests=len(self._annotations))

    async def get(self, request_id: str) -> dict[str, Any] | None:
        # The buffer first: a trace leaves it only after its row is committed, so one not
        # found there is in the database (read the other way round, a batch committed
        # between the two reads would be found in neither).
        for trace in self._buffer:
            if trace.get("request_id") == request_id:
                return trace
        async with self._sessions() as session:
            return await session.scalar(
                select(TraceRow.data).where(TraceRow.request_id == request_id)
            )

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            await self._wake.wait()
            if len(self._buffer) < self._batch:
                # Under load, the traces of answers finishing together share one transaction
                # instead of a commit each; `get` reads the buffer meanwhile.
                await asyncio.sleep(self._linger)
            self._wake.clear()
            while self._buffer:
                if await self._write_batch():
                    delay = self._retry_initial
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)

    async def _write_batch(self) -> bool:
        async with self._writing:
            return await self._write_locked()

    async def _write_locked(self) -> bool:
        if not self._buffer:
            return True
        batch = [self._buffer[i] for i in range(min(self._batch, len(self._buffer)))]
        rows = [_row(trace) for trace in batch]
        insert = upsert_insert(self._engine)
        try:
            async with self._sessions() as session, session.begin():
                stmt = insert(TraceRow).values(rows)
                # A trace written twice (a retry after an unclear failure) keeps its newest data.
                stmt = stmt.on_conflict_do_update(
                    index_elements=[TraceRow.request_id], set_={"data": stmt.excluded.data}
                )
                await session.execute(stmt)
        except Exception as exc:  # the database is down or busy: keep the batch, retry later
            log.warning(
                "trace write failed, will retry",
                error=type(exc).__name__,
                pending=len(self._buffer),
            )
            return False
        for _ in batch:
            self._buffer.popleft()
        return True

    def _spill_out(self, traces: list[dict[str, Any]]) -> None:
        self.spilled += len(traces)
        self._spill.parent.mkdir(parents=True, exist_ok=True)
        with self._spill.open("a", encoding="utf-8") as handle:
            for trace in traces:
                handle.write(json.dumps(trace, default=str) + "\n")

    def _load_spill(self) -> None:
        if not self._spill.exists():
            return
        claimed = self._spill.with_suffix(f".{os.getpid()}.loading")
        try:
            self._spill.rename(claimed)  # one process claims the file
        except OSError:
            return
        for line in claimed.read_text(encoding="utf-8").splitlines():
            if line.strip():
                self._buffer.append(json.loads(line))
        claimed.unlink()


def _row(trace: dict[str, Any]) -> dict[str, Any]:
    created = trace.get("created_at")
    when = (
        datetime.fromtimestamp(created, UTC)
        if isinstance(created, int | float)
        else datetime.now(UTC)
    )
    return {
        "request_id": trace["request_id"],
        "created_at": when,
        "platform": str(trace.get("platform") or "unknown")[:16],
        "asker": trace.get("asker"),
        "mode": str(trace.get("mode") or "unknown")[:16],
        "data": json.loads(json.dumps(trace, default=str)),
    }


async def most_asked_questions(
    engine: AsyncEngine, limit: int = 4, days: float = 30, scan: int = 5000
) -> list[str]:
    """The questions most asked lately (the newest ``scan`` answered traces of the last
    ``days``), for suggested prompts that everyone sees. Only questions that are safe to show
    anyone count: asked in public conversations (so answered from public documents), answered
    (not refused, unclear or handed off), by at least two different people, and without any
    personal data; the question text as traces keep it (never a redacted placeholder)."""
    since = datetime.now(UTC) - timedelta(days=days)
    question = TraceRow.data["question"].as_string()
    async with sessionmaker(engine)() as session:
        rows = await session.execute(
            select(TraceRow.asker, question)
            .where(
                TraceRow.mode == "answer",
                TraceRow.created_at >= since,
                TraceRow.data["audience"].as_string() == "public",
            )
            .order_by(TraceRow.created_at.desc())
            .limit(scan)
        )
        asked = rows.all()
    askers: dict[str, set[str]] = {}
    wording: dict[str, Counter[str]] = {}
    for asker, question in asked:
        said = " ".join(str(question or "").split())
        if not asker or not said or said.startswith("[redacted") or mentions_personal_data(said):
            continue
        key = said.casefold().rstrip("?.! ")
        askers.setdefault(key, set()).add(asker)
        wording.setdefault(key, Counter())[said] += 1
    ranked = sorted(
        (key for key, people in askers.items() if len(people) >= 2),
        key=lambda key: (-len(askers[key]), -sum(wording[key].values()), key),
    )
    return [wording[key].most_common(1)[0][0] for key in ranked[:limit]]
