"""`answerdesk tickets`: every handoff, whichever provider (list, show), and the built-in
queue's agent side (reply into the asker's thread, resolve)."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.commands.common import Subparsers, UsageError, database, print_json, run, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    tickets = sub.add_parser("tickets", help="handoffs to people: list, show, reply, resolve")
    tickets.set_defaults(handler=handle)
    tsub = subcommands(tickets, "tickets_command")
    tlist = tsub.add_parser("list", help="tickets of every provider, newest first")
    tlist.add_argument("--status", choices=["open", "closed"])
    tlist.add_argument("--failed", action="store_true", help="only deliveries that keep failing")
    tlist.add_argument("--json", action="store_true")
    show = tsub.add_parser("show", help="one ticket: content, delivery, messages")
    show.add_argument("ticket", help="AD-<n>, or the ticket system's key")
    show.add_argument("--json", action="store_true")
    reply = tsub.add_parser("reply", help="answer a built-in ticket in the asker's thread")
    reply.add_argument("ticket")
    reply.add_argument("text", help="the reply (markdown)")
    reply.add_argument("--as", dest="agent", help="the agent's name, shown with the reply")
    reply.add_argument("--json", action="store_true")
    resolve = tsub.add_parser("resolve", help="close a built-in ticket and tell the thread")
    resolve.add_argument("ticket")
    resolve.add_argument("--as", dest="agent")
    resolve.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    command = args.tickets_command
    if command == "list":
        rows = run(_list, settings, args.status, args.failed)
        if args.json:
            print(json.dumps(rows))
            return 0
        for row in rows:
            key = row["key"] if row["key"] and row["key"] != row["id"] else ""
            print(
                f"{row['id']}  {key:12} {row['provider']:10} {row['status']:6} "
                f"{row['delivery']:9} {row['created_at'][:19]}  {row['asker'] or '-'}"
            )
            print(f"    {row['reason']}: {row['question'][:100]}")
            if row["last_error"] and row["delivery"] != "delivered":
                print(f"    last error ({row['attempts']} attempts): {row['last_error']}")
        if not rows:
            print("no tickets")
        return 0
    if command == "reply" and not args.text.strip():
        raise UsageError("tickets reply: the text is empty")
    result = run(_desk, settings, command, args)
    if args.json:
        print_json(result)
    elif command == "show":
        _print_ticket(result)
    else:
        _print_action(result)
    return 0


async def _list(settings: Settings, status: str | None, failed: bool) -> list[dict]:
    from adapters.db.tickets import DbTicketQueue

    async with database(settings) as engine:
        return await DbTicketQueue(engine).list(status=status, failed=failed)


@asynccontextmanager
async def _handoff(settings: Settings) -> AsyncIterator[Any]:
    """The handoff parts without the index: tickets need only the database and the chat."""
    from adapters.db.memory import SqlConversationMemory
    from adapters.db.traces import BufferedTraceWriter
    from bot.handoff import build_handoff
    from bot.wiring import build_outbound

    async with database(settings) as engine:
        traces = BufferedTraceWriter(engine, settings.data_dir / "traces-spill.jsonl")
        parts = build_handoff(
            settings,
            engine,
            SqlConversationMemory(engine),
            build_outbound(settings, engine),
            traces,
        )
        try:
            yield parts
        finally:
            await parts.handoffs.system.close()
            await traces.close()  # the trace annotations (first response, resolution)


async def _desk(settings: Settings, command: str, args: argparse.Namespace) -> dict:
    from core.handoff.events import NotBuiltin, TicketNotFound

    async with _handoff(settings) as parts:
        try:
            if command == "show":
                return await parts.desk.show(args.ticket)
            if command == "reply":
                return await parts.desk.reply(args.ticket, args.text, args.agent)
            return await parts.desk.resolve(args.ticket, args.agent)
        except (TicketNotFound, NotBuiltin) as exc:
            raise UsageError(f"tickets {command}: {exc}") from None


def _print_ticket(ticket: dict) -> None:
    key = f" ({ticket['key']})" if ticket["key"] and ticket["key"] != ticket["id"] else ""
    print(f"{ticket['id']}{key}  {ticket['provider']}  {ticket['status']}  {ticket['delivery']}")
    if ticket["url"]:
        print(f"  {ticket['url']}")
    print(f"  asked by {ticket['asker'] or '-'}, request {ticket['request_id']}")
    print(f"  {ticket['reason']}: {ticket['question']}")
    for label, name in (("first response", "first_response_s"), ("resolution", "resolution_s")):
        if ticket[name] is not None:
            print(f"  {label} after {ticket[name]} s")
    link = (ticket.get("content") or {}).get("conversation", {}).get("link")
    if link:
        print(f"  thread: {link}")
    for message in ticket["messages"]:
        print(f"  [{message['kind']}, {message['delivery']}] {message['text'][:200]}")


def _print_action(result: dict) -> None:
    ticket = result["ticket"]
    print(f"{ticket['id']}: {result['outcome']}; the ticket is {ticket['status']}")
    for message in result["messages"]:
        if message["delivery"] == "delivered":
            print(f"  posted into {message['platform']} thread {message['thread'] or '-'}")
        else:
            print(f"  queued for the service to post ({message['last_error']})")
