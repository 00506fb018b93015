"""`answerdesk search`: permission-filtered retrieval as a given user."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.commands.common import Subparsers, UsageError, operate
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    search = sub.add_parser("search", help="permission-filtered retrieval, as a given user")
    search.set_defaults(handler=handle)
    search.add_argument("query", nargs="?")
    search.add_argument("--as", dest="as_email", required=True, metavar="EMAIL")
    search.add_argument("-k", type=int, default=None, help="number of hits (default from config)")
    search.add_argument("--file", type=Path, help="one query per line; JSON lines out")
    search.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from bot import operations  # the service's whole wiring: only when it runs

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
    results = operate(
        settings, "search", params, lambda services: operations.search(services, params)
    )
    for result in results:
        if args.json or args.file is not None:
            print(json.dumps(result))
        else:
            print(_format(result))
    return 0


def _format(result: dict) -> str:
    lines = [f"{result['query']!r} as {result['as']} ({', '.join(result['principals'])})"]
    if "note" in result:
        lines.append(f"  note: {result['note']}")
    for n, hit in enumerate(result["hits"], start=1):
        page = f", p. {hit['page']}" if hit["page"] else ""
        lines.append(
            f"  {n}. {hit['title']} — {hit['source']}{page} (score {hit['score']:.3f}, "
            f"{hit['classification']})"
        )
    if not result["hits"]:
        lines.append("  no readable documents match")
    return "\n".join(lines)
