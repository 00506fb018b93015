"""`answerdesk serve`: the HTTP service, in one process or, with `--workers N`, in N
processes sharing the port (SO_REUSEPORT: the kernel spreads connections over them)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import structlog

from bot.commands.common import Subparsers, UsageError, run
from bot.settings import Settings

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
log = structlog.get_logger()


def register(sub: Subparsers) -> None:
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.set_defaults(handler=handle)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load the demo corpus and directory when the index is empty",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes sharing the port (PostgreSQL + Chroma server setup only)",
    )


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return int(value)


def handle(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    if args.workers > 1:
        return _serve_workers(settings, host, port, args.demo, args.workers)
    run(_serve, settings, host, port, args.demo)
    return 0


def workers_refusal(settings: Settings, port: int) -> str | None:
    """Why `serve --workers` cannot run with these settings, or None."""
    if not settings.db_url.startswith("postgresql") or settings.chroma_url is None:
        return (
            "serve: --workers needs the PostgreSQL + Chroma server setup (DATABASE_URL="
            "postgresql+asyncpg://… and CHROMA_URL=http://…): the embedded SQLite database "
            "and Chroma index belong to one process; run one `serve` there"
        )
    if port == 0:
        return "serve: --workers needs a fixed --port (the workers share it)"
    return None


def _serve_workers(settings: Settings, host: str, port: int, demo: bool, workers: int) -> int:
    """Migrate (and load the demo) once, then fork the workers, each a whole service on
    the shared port; SIGTERM/SIGINT stop them all. When one worker exits, the others are
    stopped too and its exit code is returned: a process manager restarts the service."""
    import signal

    refusal = workers_refusal(settings, port)
    if refusal:
        raise UsageError(refusal)
    # Even the preparation runs in a child: the parent forks the workers from a clean
    # state (no threads, no model sessions, no connections).
    prepared = _forked(lambda: run(_prepare, settings, demo), "preparation")
    if prepared != 0:
        return prepared
    children = [
        _fork(lambda i=index: run(_serve, settings, host, port, False, (i, workers)), index)
        for index in range(1, workers + 1)
    ]

    def stop(_signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    code = 0
    remaining = set(children)
    while remaining:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        remaining.discard(pid)
        exited = os.waitstatus_to_exitcode(status)
        if exited not in (0, -signal.SIGTERM, -signal.SIGINT) and code == 0:
            code = exited if exited > 0 else 1
            log.error("worker exited; stopping the others", pid=pid, code=exited)
        if remaining:
            stop(signal.SIGTERM, None)
    return code


def _fork(work: Any, name: object) -> int:
    """Run ``work`` in a forked child, which leaves with its exit code; the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        work()
    except UsageError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr, flush=True)
        code = 2
    except BaseException:
        log.exception("worker failed", worker=name)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # never the parent's clean-up
    return pid  # not reached


def _forked(work: Any, name: str) -> int:
    """Run ``work`` in a forked child and wait for it; its exit code."""
    _, status = os.waitpid(_fork(work, name), 0)
    return os.waitstatus_to_exitcode(status)


async def _prepare(settings: Settings, demo: bool) -> None:
    """What must happen once, before the workers start: migrations, the demo corpus."""
    from bot.wiring import build_services

    services = await build_services(settings)
    try:
        if demo:
            await _load_demo(services)
    finally:
        await services.close()


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    demo: bool,
    worker: tuple[int, int] | None = None,
) -> None:
    import signal

    from aiohttp import web

    from bot.app import create_app
    from bot.runtime import ServiceLock, admin_token, publish_service, withdraw_service
    from bot.wiring import build_services

    lock = None
    if settings.chroma_url is None:  # the embedded index has one owner: this service
        lock = ServiceLock(settings.data_dir)
        await lock.acquire(
            on_wait=lambda: log.info(
                "waiting for a running ingestion to finish", lock=str(lock.path)
            )
        )
    try:
        services = await build_services(settings)
        await _sweep_probes(services)
        if demo:
            await _load_demo(services)
        await _warm_up(services)
        login = await _console_login(services, demo)
        token = admin_token(settings)
        label = f"{worker[0]} of {worker[1]}" if worker else None
        runner = web.AppRunner(create_app(services, token, worker=label), handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_port=worker is not None)
            try:
                await site.start()
            except OSError as exc:
                raise UsageError(f"serve: cannot listen on {host}:{port}: {exc.strerror}") from None
            local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            if lock is not None:
                publish_service(settings.data_dir, f"http://{local}:{port}", token)
            where = f" (worker {label}, pid {os.getpid()})" if label else ""
            print(
                f"Answerdesk is serving on http://{host}:{port}/ (health: /healthz){where}",
                flush=True,
            )
            if login is not None:
                print(f"Admin console: http://{local}:{port}/admin — {login}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
            log.info("shutting down")
        finally:
            if lock is not None:
                withdraw_service(settings.data_dir)
            await runner.cleanup()
    finally:
        if lock is not None:
            lock.release()


async def _sweep_probes(services: Any) -> None:
    """What a killed `answerdesk preflight` left in the database: its ACL probe's documents,
    cache rows and ACL set (README "Launch checklist and releases")."""
    from bot.acl_probe import sweep

    try:
        swept = await sweep(services)
    except Exception as exc:  # never a reason not to start
        log.warning("preflight probe sweep failed", error=type(exc).__name__)
        return
    if any(swept.values()):
        log.info("removed what an interrupted preflight left", **swept)


async def _console_login(services: Any, demo: bool) -> str | None:
    """With --demo and no login in the environment, a fresh demo login for this run only
    (printed once, stored as a hash, replaced at the next start). Without --demo, demo
    logins of earlier runs are removed."""
    import secrets

    from adapters.db.admin import AdminStore
    from bot.console.auth import hash_password

    cfg = services.settings.admin
    if not cfg.enabled:
        return None
    store = AdminStore(services.engine)
    await store.remove_users("demo")
    if cfg.user:
        return f"log in as {cfg.user}"
    if not demo:
        return "no login configured (set ANSWERDESK_ADMIN_USER and ANSWERDESK_ADMIN_PASSWORD)"
    password = secrets.token_urlsafe(12)
    await store.set_user("demo", await asyncio.to_thread(hash_password, password), "demo")
    return f"one-time demo login: user demo, password {password}"


async def _warm_up(services: Any) -> None:
    """Load the embedding model before the first question, then move everything built at
    start-up (models, libraries: ~500k objects) out of the garbage collector's view: a full
    collection over them would stall the event loop (and Slack acks) for ~300 ms."""
    import gc

    await asyncio.to_thread(services.embedder.embed, ["warm-up"])
    await services.answers.warm_up()  # reads which release is active, too
    tiers = services.answers.active.config.tiers
    if tiers:
        from adapters.llm.litellm_client import warm_up

        await warm_up(tiers)
    gc.collect()
    gc.freeze()


async def _load_demo(services: Any) -> None:
    """The demo directory and corpus, loaded once into an empty index."""
    from core.acl import load_policy
    from core.directory import load_directory_file

    if await asyncio.to_thread(services.index.count) > 0:
        return
    log.info("loading demo corpus", path=str(DEMO_DIR / "corpus"))
    await services.directory.import_entries(
        load_directory_file(DEMO_DIR / "directory.yaml"), replace=False
    )
    async with services.ingest_lock():
        report = await services.ingestor.ingest(
            [DEMO_DIR / "corpus"], load_policy(DEMO_DIR / "acl.yaml")
        )
    summary = report.to_dict()
    log.info("demo corpus ingested", documents=summary["added"], chunks=summary["chunks"])
