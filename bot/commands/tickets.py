"""`answerdesk tickets list`: the built-in handoff queue."""

from __future__ import annotations

import argparse
import json

from bot.commands.common import Subparsers, database, run, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    tickets = sub.add_parser("tickets", help="the built-in handoff queue")
    tickets.set_defaults(handler=handle)
    tsub = subcommands(tickets, "tickets_command")
    tlist = tsub.add_parser("list", help="tickets, newest first")
    tlist.add_argument("--status", choices=["open", "closed"])
    tlist.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    rows = run(_list, settings, args.status)
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        print(f"{row['id']}  {row['status']:6}  {row['created_at'][:19]}  {row['asker'] or '-'}")
        print(f"    {row['reason']}: {row['question'][:100]}")
    if not rows:
        print("no tickets")
    return 0


async def _list(settings: Settings, status: str | None) -> list[dict]:
    from adapters.db.tickets import DbTicketQueue

    async with database(settings) as engine:
        return await DbTicketQueue(engine).list(status=status)
