"""`answerdesk db upgrade|downgrade`: Alembic migrations."""

from __future__ import annotations

import argparse

from bot.commands.common import Subparsers, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    db = sub.add_parser("db", help="database migrations")
    db.set_defaults(handler=handle)
    db_sub = subcommands(db, "db_command")
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema")
    up.add_argument("revision", nargs="?", default="head")
    down = db_sub.add_parser("downgrade", help="migrate down to REVISION ('base' = empty)")
    down.add_argument("revision")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.db.engine import downgrade_sync, upgrade_sync

    settings.prepare_data_dir()
    if args.db_command == "upgrade":
        upgrade_sync(settings.db_url, args.revision)
    else:
        downgrade_sync(settings.db_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0
