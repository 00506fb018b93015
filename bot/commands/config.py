"""`answerdesk config check`: the configuration exactly as `serve` loads it (file +
`ANSWERDESK_*` overrides + `DATABASE_URL`/`CHROMA_URL`), secrets masked, followed by what
each configured feature needs and whether it is there. Changes nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

from bot.commands.common import Subparsers, subcommands
from bot.settings import CONFIG_ENV, ConfigError, load_settings


def register(sub: Subparsers) -> None:
    config = sub.add_parser("config", help="the effective configuration")
    # Loads the settings itself, so that every problem is reported, not only the first.
    config.set_defaults(handler=handle, loads_settings=True)
    csub = subcommands(config, "config_command")
    check = csub.add_parser(
        "check", help="validate, print the effective configuration and what it needs"
    )
    check.add_argument("--json", action="store_true")


def handle(_settings: None, args: argparse.Namespace) -> int:
    from bot.checks import PROBLEM, configuration_checks

    source = os.environ.get(CONFIG_ENV) or None
    try:
        settings = load_settings()
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"config_file": source, "usable": False, "problems": exc.problems}))
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    effective = settings.model_dump(mode="json")  # SecretStr values dump as "**********"
    checks = configuration_checks(settings)
    problems = [f"{c.name}: {c.detail}" for c in checks if c.status == PROBLEM]
    if args.json:
        print(
            json.dumps(
                {
                    "config_file": source,
                    "usable": not problems,
                    "effective": effective,
                    "checks": [c.to_dict() for c in checks],
                    "problems": problems,
                }
            )
        )
    else:
        print(
            f"# effective configuration ({source or 'no file: embedded defaults'}; secrets masked)"
        )
        print(yaml.safe_dump(effective, sort_keys=False, allow_unicode=True).rstrip())
        print("\n# what the configured features need")
        for check in checks:
            print(f"{check.status:8} {check.name}: {check.detail}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2 if problems else 0
