"""Hostile-input testing: the service served on a real loopback port from its own event loop
(a daemon thread, so hypothesis' synchronous tests drive it with an aiohttp client), what it
has stored (every row of every table), and what it logged at error level (a crash in a
background task shows only there).

Hypothesis strategies shared by the fuzz suites live here too."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import structlog
from aiohttp import web
from hypothesis import strategies as st

from bot.app import create_app
from bot.settings import Settings
from bot.wiring import Services, build_services
from tests.support.model_server import unused_port

T = TypeVar("T")


class ServedApp:
    """`create_app` on 127.0.0.1 in a thread of its own; :meth:`call` runs a coroutine there
    (the services' engines belong to that loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.services: Services | None = None
        self._idle: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> ServedApp:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        self.services = await build_services(self.settings)
        self._runner = web.AppRunner(create_app(self.services), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        await asyncio.sleep(0.2)  # let start-up tasks (workers, refreshers) begin
        self._idle = _task_names()

    def call(self, work: Awaitable[T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)  # type: ignore[arg-type]

    def settle(self, timeout: float = 30) -> None:
        """Wait (bounded) until the tasks running on the service's loop are only those it
        runs while idle (workers, refreshers): what a request started in the background —
        an answer, a claim, a late delivery — has finished."""

        async def extra() -> Counter[str]:
            return _task_names() - self._idle

        async def _quiet() -> None:
            deadline = asyncio.get_running_loop().time() + timeout
            while (left := await extra()) or self.services.traces.pending:  # type: ignore[union-attr]
                assert asyncio.get_running_loop().time() < deadline, f"still running: {left}"
                await asyncio.sleep(0.02)

        self.call(_quiet(), timeout + 5)

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


# Keep-alive connections, this harness' own, and the trace writer's loop (started with the
# first trace; what it holds is waited for through `traces.pending`).
_NOT_WORK = (
    "RequestHandler.start",
    "ServedApp._start",
    "ServedApp.settle.<locals>._quiet",
    "BufferedTraceWriter._run",
)


def _task_names() -> Counter[str]:
    """The service loop's running tasks by coroutine, less its keep-alive connections and
    this harness' own."""
    names = (task.get_coro().__qualname__ for task in asyncio.all_tasks() if not task.done())  # type: ignore[union-attr]
    return Counter(name for name in names if name not in _NOT_WORK)


def rows_digest(database: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every table's rows (sorted) as a digest, from the SQLite file: what `nothing written`
    compares."""
    digests: dict[str, str] = {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] not in skip
        ]
        for table in sorted(tables):
            rows = sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))
            digests[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    return digests


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(level=logging.ERROR)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(f"{record.name}: {record.getMessage()}")


def structlog_errors(captured: list[dict[str, Any]]) -> list[str]:
    return [
        f"{entry.get('event')}: {entry}"
        for entry in captured
        if entry.get("log_level") in ("error", "critical", "exception")
    ]


@contextmanager
def error_log() -> Iterator[Callable[[], list[str]]]:
    """Yields a function that returns (and clears) what was logged at error level since."""
    entries: list[str] = []
    handler = _Collect(entries)
    root = logging.getLogger()
    root.addHandler(handler)
    with structlog.testing.capture_logs() as captured:

        def take() -> list[str]:
            found = entries + structlog_errors(captured)
            entries.clear()
            captured.clear()
            return found

        try:
            yield take
        finally:
            root.removeHandler(handler)


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
    **kwargs: Any,
) -> tuple[int, str, str]:
    """(status, content type, body text) — the body as sent, with no default headers added
    by the client beyond what HTTP needs."""
    body: Any = data
    if chunked and data is not None:

        async def stream() -> Any:
            for start in range(0, len(data), 4096):
                yield data[start : start + 4096]

        body = stream()
    async with session.request(
        method, url, data=body, headers=headers, allow_redirects=False, **kwargs
    ) as response:
        return response.status, response.content_type, await response.text(errors="replace")


def is_json_error(content_type: str, text: str) -> bool:
    if content_type != "application/json":
        return False
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str) and bool(body["error"])


# --- strategies ---------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=12,
)
# Header values as HTTP carries them (latin-1), including what no client should send.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "text/plain",
        "application/octet-stream",
        "application/json; charset=latin-1",
        "",
    ]
)


def dict_with(
    base: dict[str, Any], fields: st.SearchStrategy[Any] = json_values
) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some keys removed, some values replaced by anything, some keys added."""
    keys = sorted(base)
    return st.builds(
        _mutate,
        st.just(base),
        st.sets(st.sampled_from(keys)) if keys else st.just(set()),
        st.dictionaries(st.sampled_from(keys), fields, max_size=3) if keys else st.just({}),
        st.dictionaries(st.text(max_size=10), fields, max_size=2),
    )


def _mutate(
    base: dict[str, Any], drop: set[str], replace: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    out = {k: v for k, v in base.items() if k not in drop}
    out.update(replace)
    out.update(extra)
    return out
