"""`answerdesk cache stats|clear`: the semantic answer cache."""

from __future__ import annotations

import argparse
import json

from bot.commands.common import Subparsers, operate, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    cache = sub.add_parser("cache", help="the semantic answer cache")
    cache.set_defaults(handler=handle)
    csub = subcommands(cache, "cache_command")
    for name, text in (("stats", "entries, hits, releases"), ("clear", "remove every entry")):
        sub_cmd = csub.add_parser(name, help=text)
        sub_cmd.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from bot import operations  # the service's whole wiring: only when it runs

    params = {"command": args.cache_command}
    result = operate(settings, "cache", params, lambda services: operations.cache(services, params))
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
