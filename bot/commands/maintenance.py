"""`answerdesk maintenance purge --older-than 30d [--dry-run]`: retention."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from bot.commands.common import Subparsers, UsageError, operate, subcommands
from bot.settings import Settings

WHAT = {
    "traces": "traces",
    "votes": "votes on them",
    "memory_turns": "conversation memory turns",
    "cache_entries": "cache entries",
    "closed_tickets": "closed tickets",
}


def register(sub: Subparsers) -> None:
    maintenance = sub.add_parser("maintenance", help="retention and housekeeping")
    maintenance.set_defaults(handler=handle)
    msub = subcommands(maintenance, "maintenance_command")
    purge = msub.add_parser(
        "purge", help="delete traces, memory, cache entries and closed tickets older than AGE"
    )
    purge.add_argument(
        "--older-than", metavar="AGE", help="e.g. 30d, 12w (default: retention.max_age)"
    )
    purge.add_argument("--dry-run", action="store_true", help="count only; delete nothing")
    purge.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from bot import operations  # the service's whole wiring: only when it runs
    from bot.durations import parse_duration

    older_than = args.older_than or settings.retention.max_age
    if older_than is None:
        raise UsageError("maintenance purge: give --older-than AGE or set retention.max_age")
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"maintenance purge: --older-than: {exc}") from None
    cutoff = time.time() - age
    params = {"cutoff": cutoff, "dry_run": args.dry_run}
    found = operate(settings, "purge", params, lambda services: operations.purge(services, params))
    when = datetime.fromtimestamp(cutoff, UTC).isoformat(timespec="seconds")
    if args.json:
        print(json.dumps({"before": when, "dry_run": args.dry_run, "removed": found}))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    listed = ", ".join(f"{found[key]} {label}" for key, label in WHAT.items())
    print(f"purge (older than {when}): {verb} {listed}")
    return 0
