"""`answerdesk` command line: parsing and dispatch; each command group lives in its own
module under `bot/commands/`. Bad input: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from bot.commands import (
    admin,
    ask,
    cache,
    config,
    db,
    directory,
    embeddings,
    eval,
    ingest,
    maintenance,
    preflight,
    release,
    say,
    search,
    serve,
    slo,
    teams,
    tickets,
    trace,
)
from bot.commands.common import Parser, UsageError, fail
from bot.logging import configure_logging
from bot.settings import CONFIG_ENV, ConfigError, load_settings
from core.acl import AclFileError
from core.directory import DirectoryFileError
from core.ports import IndexMismatchError

COMMANDS = (
    serve,
    config,
    db,
    ingest,
    directory,
    search,
    ask,
    say,
    cache,
    tickets,
    trace,
    slo,
    maintenance,
    admin,
    eval,
    release,
    preflight,
    teams,
    embeddings,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="answerdesk", description="Enterprise answer bot for Slack and Teams.")
    parser.add_argument("--config", help=f"YAML config file (default: ${CONFIG_ENV})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.config:
        os.environ[CONFIG_ENV] = args.config
    try:
        if getattr(args, "loads_settings", False):
            code = args.handler(None, args)
        else:
            settings = load_settings()
            configure_logging(settings.logging)
            code = args.handler(settings, args)
    except (ConfigError, UsageError, AclFileError, DirectoryFileError, IndexMismatchError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
