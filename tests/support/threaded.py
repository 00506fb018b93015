"""A protocol double's lifecycle: its own event loop in a daemon thread, so one double serves
async tests, sync tests and subprocesses alike."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Self

from aiohttp import web


class ThreadedServer:
    host: str
    port: int
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None

    def _build_app(self) -> web.Application:
        raise NotImplementedError

    async def _serve_start(self) -> None:
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def _serve_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> Self:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve_start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        thread = threading.Thread(
            target=run, name=f"{type(self).__name__}-{id(self):x}", daemon=True
        )
        thread.start()
        ready.wait(10)
        if failure:
            thread.join(5)
            self._loop = None
            raise RuntimeError(
                f"{type(self).__name__} could not start: {failure[0]!r}"
            ) from failure[0]
        self._thread = thread
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._serve_stop(), loop)
        with contextlib.suppress(Exception):
            future.result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
