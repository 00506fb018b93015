"""`answerdesk teams package`: the Teams app package (manifest + icons) as an upload zip."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.commands.common import Subparsers, UsageError, print_json, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    teams = sub.add_parser("teams", help="Microsoft Teams: the app package")
    commands = subcommands(teams, "teams_command")
    package = commands.add_parser(
        "package", help="write the Teams app package (zip) for upload to Teams"
    )
    package.add_argument("--app-id", required=True, help="the bot's Microsoft App ID (GUID)")
    package.add_argument(
        "--domain", required=True, help="the service's public host name (validDomains)"
    )
    package.add_argument("--out", default="answerdesk-teams.zip", help="the zip to write")
    package.add_argument("--json", action="store_true", help="print the result as JSON")
    package.set_defaults(handler=handle, loads_settings=True)


def handle(_settings: Settings | None, args: argparse.Namespace) -> int:
    from adapters.teams.package import PackageError, build_package

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"teams package: --out {out} is a directory")
    if not out.parent.exists():
        raise UsageError(f"teams package: the folder {out.parent} does not exist")
    try:
        data = build_package(args.app_id, args.domain)
    except PackageError as exc:
        raise UsageError(f"teams package: {exc}") from None
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(out)  # never a half-written zip
    if args.json:
        print_json({"path": str(out), "bytes": len(data)})
    else:
        print(f"Wrote {out} ({len(data)} bytes): upload it in Teams (Apps → Manage your apps).")
    return 0
