"""`answerdesk serve`: the HTTP service."""

from __future__ import annotations

import argparse
import asyncio
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


def handle(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    run(_serve, settings, host, port, args.demo)
    return 0


async def _serve(settings: Settings, host: str, port: int, demo: bool) -> None:
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
        runner = web.AppRunner(create_app(services, token), handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                raise UsageError(f"serve: cannot listen on {host}:{port}: {exc.strerror}") from None
            local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            if lock is not None:
                publish_service(settings.data_dir, f"http://{local}:{port}", token)
            print(f"Answerdesk is serving on http://{host}:{port}/ (health: /healthz)", flush=True)
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
