"""`answerdesk ingest`: add or update documents."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.commands.common import Subparsers, UsageError, operate
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    ingest = sub.add_parser("ingest", help="add or update documents from files and folders")
    ingest.set_defaults(handler=handle)
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--acl-file", type=Path, help="YAML rules: who may read which files")
    ingest.add_argument(
        "--prune", action="store_true", help="remove documents whose files are gone"
    )
    ingest.add_argument("--reindex", action="store_true", help="drop the index and rebuild it")
    ingest.add_argument("--json", action="store_true", help="print a JSON summary")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from bot import operations  # the service's whole wiring: only when it runs
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
    summary = operate(
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
