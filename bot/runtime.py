"""Who may open the embedded index (issue: one writer per data dir).

An embedded Chroma index (PersistentClient) is not safe to share between processes: a
process does not see vectors another one adds, and two processes opening a fresh path at
once can fail. So in the embedded setup exactly one process opens it, and that is decided
by an exclusive lock on `<data dir>/service.lock`:

- `serve` takes the lock for its lifetime (waiting if an ingestion holds it) and publishes
  `<data dir>/service.json` (mode 0600): its local URL and an admin token.
- Every other command that needs the index (`ingest`, `search`, `ask`, `cache`) tries the
  lock. Free: it works directly and holds the lock meanwhile, so a service started at that
  moment waits. Taken by a running service: it hands the work to that service over
  `POST /admin/run` and reports the service's result. Taken by another command: it waits.

With `CHROMA_URL` (a Chroma server) there is nothing to coordinate: any process works
directly, and ingestion is serialised by the database (advisory lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.settings import Settings
from bot.wiring import Services, build_services

WAIT_FOR_SERVICE_S = 600.0


class HandoffError(RuntimeError):
    """The running service refused the work; the message is for the user."""

    def __init__(self, message: str, usage: bool) -> None:
        super().__init__(message)
        self.usage = usage


class ServiceLock:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "service.lock"
        self._handle: Any = None

    def try_acquire(self) -> bool:
        handle = open(self.path, "a+")  # noqa: SIM115 (held for the lock's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    async def acquire(self, on_wait: Callable[[], None] | None = None) -> None:
        if self.try_acquire():
            return
        if on_wait:
            on_wait()
        while not self.try_acquire():
            await asyncio.sleep(0.2)

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def service_file(data_dir: Path) -> Path:
    return data_dir / "service.json"


def publish_service(data_dir: Path, url: str, token: str) -> None:
    target = service_file(data_dir)
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": os.getpid(), "url": url, "token": token}, handle)
    temporary.replace(target)


def withdraw_service(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        service_file(data_dir).unlink()


def running_service(data_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(service_file(data_dir).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    return info


def admin_token(settings: Settings) -> str:
    """The configured admin token (ANSWERDESK_ADMIN_TOKEN), else a fresh one per start."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    return secrets.token_urlsafe(32)


@contextlib.asynccontextmanager
async def local_services(settings: Settings, **build: Any) -> AsyncIterator[Services]:
    services = await build_services(settings, **build)
    try:
        yield services
    finally:
        await services.close()


async def run_operation(
    settings: Settings,
    op: str,
    params: dict[str, Any],
    local: Callable[[Services], Awaitable[Any]],
    on_progress: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    **build: Any,
) -> Any:
    """Run `local` here when this process may open the index, else hand `op` to the service
    (whose progress events, when `on_progress` is given, are passed on as they come)."""
    if settings.chroma_url:
        async with local_services(settings, **build) as services:
            return await local(services)
    lock = ServiceLock(settings.data_dir)
    deadline = time.monotonic() + WAIT_FOR_SERVICE_S
    while True:
        if lock.try_acquire():
            try:
                withdraw_service(settings.data_dir)  # a crashed service's leftover
                async with local_services(settings, **build) as services:
                    return await local(services)
            finally:
                lock.release()
        info = running_service(settings.data_dir)
        if info is not None:
            return await hand_off(info, op, params, on_progress)
        if time.monotonic() > deadline:
            raise HandoffError(f"the data dir {settings.data_dir} stayed busy", usage=False)
        await asyncio.sleep(0.3)


async def hand_off(
    info: dict[str, Any],
    op: str,
    params: dict[str, Any],
    on_progress: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> Any:
    timeout = aiohttp.ClientTimeout(total=3600)
    request: dict[str, Any] = {"op": op, "params": params}
    if on_progress is not None:
        request["stream"] = True
    async with aiohttp.ClientSession(timeout=timeout) as session:
        response = await session.post(
            f"{info['url'].rstrip('/')}/admin/run",
            json=request,
            headers={"Authorization": f"Bearer {info['token']}"},
        )
        status = response.status
        if on_progress is None or status != 200:
            body = await response.json(content_type=None)
        else:  # JSON lines: progress while the service works, then the outcome
            body = {"error": "the service ended the stream without a result", "status": 500}
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if "progress" in event:
                    await on_progress(event["progress"])
                else:
                    body, status = event, int(event.get("status", 200))
    if status != 200:
        raise HandoffError(str(body.get("error", body)), usage=status == 400)
    return body["result"]
