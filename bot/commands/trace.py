"""`answerdesk trace show`: everything one request did."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.commands.common import Subparsers, UsageError, database, run, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    trace = sub.add_parser("trace", help="per-request traces")
    trace.set_defaults(handler=handle)
    tsub = subcommands(trace, "trace_command")
    tshow = tsub.add_parser("show", help="one request's trace")
    tshow.add_argument("request_id")
    tshow.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    trace = run(_show, settings, args.request_id)
    if trace is None:
        raise UsageError(f"trace: no trace with request id {args.request_id}")
    print(json.dumps(trace, indent=None if args.json else 2, ensure_ascii=False, default=str))
    return 0


async def _show(settings: Settings, request_id: str) -> Any:
    from adapters.db.conversations import SqlConversationStore
    from adapters.db.traces import BufferedTraceWriter

    async with database(settings) as engine:
        writer = BufferedTraceWriter(engine, settings.data_dir / "traces-spill.jsonl")
        try:
            await writer.flush(2.0)  # traces spilled by an earlier process land first
            trace = await writer.get(request_id)
            if trace is not None:
                trace["feedback"] = await SqlConversationStore(engine).feedback_for(request_id)
            return trace
        finally:
            await writer.close()
