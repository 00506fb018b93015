"""`answerdesk directory import|show`: people, groups and platform identities."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.commands.common import Subparsers, database, run, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    directory = sub.add_parser("directory", help="people, groups and platform identities")
    directory.set_defaults(handler=handle)
    dsub = subcommands(directory, "directory_command")
    imp = dsub.add_parser("import", help="import users from a YAML or CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--replace", action="store_true", help="remove users missing from the file")
    imp.add_argument("--json", action="store_true")
    show = dsub.add_parser("show", help="a user's principals")
    show.add_argument("email")
    show.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    if args.directory_command == "import":
        from core.directory import load_directory_file

        entries = load_directory_file(args.file)
        result = run(_import, settings, entries, args.replace)
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"directory: {result['imported']} users ({result['created']} new, "
                f"{result['updated']} updated, {result['removed']} removed)"
            )
        return 0
    resolved = run(_resolve_email, settings, args.email)
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


async def _import(settings: Settings, entries: Any, replace: bool) -> dict:
    from adapters.db.directory import SqlDirectory

    async with database(settings) as engine:
        return await SqlDirectory(engine).import_entries(entries, replace=replace)


async def _resolve_email(settings: Settings, email: str) -> Any:
    from adapters.db.directory import SqlDirectory

    async with database(settings) as engine:
        return await SqlDirectory(engine).resolve_email(email)
