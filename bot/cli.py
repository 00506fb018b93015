"""`answerdesk` command line. Bad input: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import structlog

from bot import operations
from bot.logging import configure_logging
from bot.settings import CONFIG_ENV, ConfigError, Settings, load_settings
from core.acl import AclFileError
from core.directory import DirectoryFileError
from core.ports import IndexMismatchError

DEMO_DIR = Path(__file__).resolve().parent / "demo"
log = structlog.get_logger()


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: {message} (see --help)")


def _fail(message: str) -> NoReturn:
    print(message.splitlines()[0] if message else "error", file=sys.stderr)
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="answerdesk", description="Enterprise answer bot for Slack and Teams.")
    parser.add_argument("--config", help=f"YAML config file (default: ${CONFIG_ENV})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load the demo corpus and directory when the index is empty",
    )

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema")
    up.add_argument("revision", nargs="?", default="head")
    down = db_sub.add_parser("downgrade", help="migrate down to REVISION ('base' = empty)")
    down.add_argument("revision")

    ingest = sub.add_parser("ingest", help="add or update documents from files and folders")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--acl-file", type=Path, help="YAML rules: who may read which files")
    ingest.add_argument(
        "--prune", action="store_true", help="remove documents whose files are gone"
    )
    ingest.add_argument("--reindex", action="store_true", help="drop the index and rebuild it")
    ingest.add_argument("--json", action="store_true", help="print a JSON summary")

    directory = sub.add_parser("directory", help="people, groups and platform identities")
    dsub = directory.add_subparsers(dest="directory_command", required=True, parser_class=_Parser)
    imp = dsub.add_parser("import", help="import users from a YAML or CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--replace", action="store_true", help="remove users missing from the file")
    imp.add_argument("--json", action="store_true")
    show = dsub.add_parser("show", help="a user's principals")
    show.add_argument("email")
    show.add_argument("--json", action="store_true")

    search = sub.add_parser("search", help="permission-filtered retrieval, as a given user")
    search.add_argument("query", nargs="?")
    search.add_argument("--as", dest="as_email", required=True, metavar="EMAIL")
    search.add_argument("-k", type=int, default=None, help="number of hits (default from config)")
    search.add_argument("--file", type=Path, help="one query per line; JSON lines out")
    search.add_argument("--json", action="store_true")

    ask = sub.add_parser("ask", help="answer a question as a given user, with citations")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--as", dest="as_email", metavar="EMAIL")
    ask.add_argument(
        "--audience",
        default="dm",
        help="who reads the reply: dm (default), public, or members:a@x,b@y",
    )
    ask.add_argument(
        "--file", type=Path, help="JSON lines with question, as, optional audience; JSON out"
    )
    ask.add_argument("--conversation", help="conversation/thread id (enables follow-ups)")
    ask.add_argument("--json", action="store_true")

    cache = sub.add_parser("cache", help="the semantic answer cache")
    csub = cache.add_subparsers(dest="cache_command", required=True, parser_class=_Parser)
    for name, text in (("stats", "entries, hits, releases"), ("clear", "remove every entry")):
        sub_cmd = csub.add_parser(name, help=text)
        sub_cmd.add_argument("--json", action="store_true")

    tickets = sub.add_parser("tickets", help="the built-in handoff queue")
    tsub_t = tickets.add_subparsers(dest="tickets_command", required=True, parser_class=_Parser)
    tlist = tsub_t.add_parser("list", help="tickets, newest first")
    tlist.add_argument("--status", choices=["open", "closed"])
    tlist.add_argument("--json", action="store_true")

    trace = sub.add_parser("trace", help="per-request traces")
    tsub = trace.add_subparsers(dest="trace_command", required=True, parser_class=_Parser)
    tshow = tsub.add_parser("show", help="one request's trace")
    tshow.add_argument("request_id")
    tshow.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.config:
        os.environ[CONFIG_ENV] = args.config
    try:
        settings = load_settings()
        configure_logging(settings.logging)
        handler = _HANDLERS[args.command]
        code = handler(settings, args)
    except (ConfigError, UsageError, AclFileError, DirectoryFileError, IndexMismatchError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


def _run(coro_fn: Callable[..., Any], *args: Any) -> Any:
    return asyncio.run(coro_fn(*args))


# --- db ----------------------------------------------------------------------------------


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.db.engine import downgrade_sync, upgrade_sync

    settings.prepare_data_dir()
    if args.db_command == "upgrade":
        upgrade_sync(settings.db_url, args.revision)
    else:
        downgrade_sync(settings.db_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


# --- ingest ------------------------------------------------------------------------------


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from core.acl import load_policy

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"ingest: no such file or directory: {', '.join(missing)}")
    if args.acl_file:
        load_policy(args.acl_file)  # a bad ACL file stops everything before anything is written
    params = {
        "paths": [str(p.resolve()) for p in args.paths],
        "acl_file": str(args.acl_file.resolve()) if args.acl_file else None,
        "prune": args.prune,
        "reindex": args.reindex,
    }
    progress = None if args.json else _progress_bar()
    summary = _operate(
        settings,
        "ingest",
        params,
        lambda services: operations.ingest(services, {**params, "reindex": False}, progress),
        reindex=args.reindex,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"ingested: {summary['added']} added, {summary['updated']} updated, "
            f"{summary['unchanged']} unchanged, {summary['pruned']} pruned, "
            f"{len(summary['failed'])} failed; {summary['chunks']} chunks, "
            f"{summary['exact_duplicates']} exact and {summary['near_duplicates']} near "
            f"duplicates, {summary['seconds']} s"
        )
    for failure in summary["failed"]:
        print(f"failed: {failure['path']}: {failure['reason']}", file=sys.stderr)
    return 1 if summary["failed"] else 0


def _operate(
    settings: Settings,
    op: str,
    params: dict,
    local: Callable[[Any], Any],
    **build: Any,
) -> Any:
    """Run an index operation here, or in the service that owns the embedded index."""
    from bot.runtime import HandoffError, run_operation

    try:
        return asyncio.run(run_operation(settings, op, params, local, **build))
    except HandoffError as exc:
        if exc.usage:
            raise UsageError(f"{op}: {exc}") from None
        raise RuntimeError(f"{op}: {exc}") from None


def _progress_bar() -> Callable[[int, int, str], None] | None:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(number: int, total: int, name: str) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="file", file=sys.stderr)
        bar["bar"].set_postfix_str(name[-40:])
        bar["bar"].update(1)
        if number == total:
            bar["bar"].close()

    return update


# --- directory ---------------------------------------------------------------------------


def _directory(settings: Settings, args: argparse.Namespace) -> int:
    if args.directory_command == "import":
        from core.directory import load_directory_file

        entries = load_directory_file(args.file)
        result = _run(_directory_import, settings, entries, args.replace)
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"directory: {result['imported']} users ({result['created']} new, "
                f"{result['updated']} updated, {result['removed']} removed)"
            )
        return 0
    resolved = _run(_resolve_email, settings, args.email)
    payload = {
        "email": resolved.email,
        "known": resolved.known,
        "principals": sorted(resolved.principals),
    }
    if args.json:
        print(json.dumps(payload))
    else:
        note = "" if resolved.known else " (not in the directory: public only)"
        print(f"{resolved.email}{note}: {', '.join(payload['principals'])}")
    return 0


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Any]:
    """A migrated database engine, for commands that need no vector index."""
    from adapters.db.engine import create_engine, upgrade

    settings.prepare_data_dir()
    await upgrade(settings.db_url)
    engine = create_engine(settings.db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _directory_import(settings: Settings, entries: Any, replace: bool) -> dict:
    from adapters.db.directory import SqlDirectory

    async with _database(settings) as engine:
        return await SqlDirectory(engine).import_entries(entries, replace=replace)


async def _resolve_email(settings: Settings, email: str) -> Any:
    from adapters.db.directory import SqlDirectory

    async with _database(settings) as engine:
        return await SqlDirectory(engine).resolve_email(email)


# --- search ------------------------------------------------------------------------------


def _search(settings: Settings, args: argparse.Namespace) -> int:
    if (args.query is None) == (args.file is None):
        raise UsageError("search: give either QUERY or --file QUERIES.txt")
    if args.k is not None and not 1 <= args.k <= 100:
        raise UsageError("search: -k must be between 1 and 100")
    if args.file is not None:
        try:
            queries = [q.strip() for q in args.file.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"search: cannot read {args.file}: {exc}") from None
        queries = [q for q in queries if q]
    else:
        queries = [args.query]
    if not all(q.strip() for q in queries):
        raise UsageError("search: the query is empty")
    params = {"email": args.as_email, "queries": queries, "k": args.k}
    results = _operate(
        settings, "search", params, lambda services: operations.search(services, params)
    )
    for result in results:
        if args.json or args.file is not None:
            print(json.dumps(result))
        else:
            print(_format_search(result))
    return 0


def _format_search(result: dict) -> str:
    lines = [f"{result['query']!r} as {result['as']} ({', '.join(result['principals'])})"]
    if "note" in result:
        lines.append(f"  note: {result['note']}")
    for n, hit in enumerate(result["hits"], start=1):
        page = f", p. {hit['page']}" if hit["page"] else ""
        lines.append(f"  {n}. {hit['title']} — {hit['source']}{page} (score {hit['score']:.3f})")
    if not result["hits"]:
        lines.append("  no readable documents match")
    return "\n".join(lines)


# --- ask ---------------------------------------------------------------------------------


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    from core.answering.types import Asker, Audience, Question

    def question(
        text: Any, email: Any, audience: Any, where: str, conversation: Any = None
    ) -> Question:
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"ask: {where}: the question is empty")
        if not isinstance(email, str) or "@" not in email:
            raise UsageError(f"ask: {where}: give the asker's email (--as EMAIL)")
        try:
            parsed = Audience.parse(audience if isinstance(audience, str) else "")
        except ValueError as exc:
            raise UsageError(f"ask: {where}: {exc}") from None
        return Question(
            text=text,
            asker=Asker(email=email.strip().lower()),
            audience=parsed,
            conversation_id=str(conversation) if conversation else None,
        )

    if (args.question is None) == (args.file is None):
        raise UsageError("ask: give either QUESTION or --file QUESTIONS.jsonl")
    if args.file is None:
        questions = [
            question(args.question, args.as_email, args.audience, "question", args.conversation)
        ]
    else:
        try:
            lines = args.file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"ask: cannot read {args.file}: {exc}") from None
        questions = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"ask: {args.file} line {number}: invalid JSON ({exc.msg})"
                ) from None
            if not isinstance(item, dict):
                raise UsageError(f"ask: {args.file} line {number}: expected an object")
            questions.append(
                question(
                    item.get("question"),
                    item.get("as", args.as_email),
                    item.get("audience", args.audience),
                    f"{args.file} line {number}",
                    item.get("conversation", args.conversation),
                )
            )
    params = {
        "questions": [
            {
                "text": q.text,
                "email": q.asker.email,
                "audience": str(q.audience),
                "conversation": q.conversation_id,
            }
            for q in questions
        ]
    }
    answers = _operate(settings, "ask", params, lambda services: operations.ask(services, params))
    for answer in answers:
        if args.json or args.file is not None:
            print(json.dumps(answer, ensure_ascii=False))
        else:
            print(_format_answer(answer))
    return 0


def _format_answer(answer: dict) -> str:
    lines = [answer["text"].strip()]
    if answer["citations"]:
        lines.append("")
        for c in answer["citations"]:
            page = f", p. {c['page']}" if c["page"] else ""
            lines.append(f"[{c['n']}] {c['title']} — {c['source']}{page}")
    for notice in answer["notices"]:
        lines.append(f"⚠ {notice['message']}")
    tier = f" · {answer['tier']}" if answer["tier"] else ""
    if answer.get("ticket"):
        lines.append(f"ticket {answer['ticket']['id']}")
    lines.append(f"— {answer['mode']}{tier} · request {answer['request_id']}")
    return "\n".join(lines)


# --- cache and tickets -------------------------------------------------------------------


def _cache(settings: Settings, args: argparse.Namespace) -> int:
    params = {"command": args.cache_command}
    result = _operate(
        settings, "cache", params, lambda services: operations.cache(services, params)
    )
    if args.json:
        print(json.dumps(result))
    elif args.cache_command == "clear":
        print(f"cache cleared: {result['removed']} entries removed")
    else:
        print(
            f"cache: {result['entries']} entries, {result['hits_served']} hits served, "
            f"oldest {result['oldest'] or '-'}"
        )
    return 0


def _tickets(settings: Settings, args: argparse.Namespace) -> int:
    rows = _run(_tickets_async, settings, args.status)
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        print(f"{row['id']}  {row['status']:6}  {row['created_at'][:19]}  {row['asker'] or '-'}")
        print(f"    {row['reason']}: {row['question'][:100]}")
    if not rows:
        print("no tickets")
    return 0


async def _tickets_async(settings: Settings, status: str | None) -> list[dict]:
    from adapters.db.tickets import DbTicketQueue

    async with _database(settings) as engine:
        return await DbTicketQueue(engine).list(status=status)


# --- trace -------------------------------------------------------------------------------


def _trace(settings: Settings, args: argparse.Namespace) -> int:
    trace = _run(_trace_async, settings, args.request_id)
    if trace is None:
        raise UsageError(f"trace: no trace with request id {args.request_id}")
    print(json.dumps(trace, indent=None if args.json else 2, ensure_ascii=False, default=str))
    return 0


async def _trace_async(settings: Settings, request_id: str) -> Any:
    from adapters.db.traces import BufferedTraceWriter
    from adapters.slack.store import SlackStore

    async with _database(settings) as engine:
        writer = BufferedTraceWriter(engine, settings.data_dir / "traces-spill.jsonl")
        try:
            await writer.flush(2.0)  # traces spilled by an earlier process land first
            trace = await writer.get(request_id)
            if trace is not None:
                trace["feedback"] = await SlackStore(engine).feedback_for(request_id)
            return trace
        finally:
            await writer.close()


# --- serve -------------------------------------------------------------------------------


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    _run(_serve_async, settings, host, port, args.demo)
    return 0


async def _serve_async(settings: Settings, host: str, port: int, demo: bool) -> None:
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
        if demo:
            await _load_demo(services)
        await _warm_up(services)
        token = admin_token()
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


async def _warm_up(services: Any) -> None:
    """Load the embedding model before the first question, then move everything built at
    start-up (models, libraries: ~500k objects) out of the garbage collector's view: a full
    collection over them would stall the event loop (and Slack acks) for ~300 ms."""
    import gc

    await asyncio.to_thread(services.embedder.embed, ["warm-up"])
    if services.settings.models.tiers:
        from adapters.llm.litellm_client import warm_up
        from bot.wiring import answer_config

        await warm_up(answer_config(services.settings).tiers)
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


_HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "db": _db,
    "ingest": _ingest,
    "directory": _directory,
    "search": _search,
    "serve": _serve,
    "ask": _ask,
    "trace": _trace,
    "cache": _cache,
    "tickets": _tickets,
}
