"""`answerdesk admin hash-password`: a hash for ANSWERDESK_ADMIN_PASSWORD_HASH, so that not
even the environment holds the console password in clear."""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.commands.common import Subparsers, UsageError, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    admin = sub.add_parser("admin", help="the admin console")
    admin.set_defaults(handler=handle)
    asub = subcommands(admin, "admin_command")
    asub.add_parser(
        "hash-password",
        help="read a password (prompt, or one line on stdin) and print its hash",
    )


def handle(_settings: Settings, _args: argparse.Namespace) -> int:
    from bot.console.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("admin hash-password: the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise UsageError("admin hash-password: use at least 8 characters")
    print(hash_password(password))
    return 0
