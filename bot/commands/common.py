"""What the command modules share: one-line usage errors, the migrated database, and the
hand-off of index work to a running service."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

from bot.settings import Settings


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    print(message.splitlines()[0] if message else "error", file=sys.stderr)
    raise SystemExit(2)


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (a key or a path from a file may hold a
    line break): one problem stays one line on stderr."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message} (see --help)")


Subparsers = Any  # argparse's private _SubParsersAction


def subcommands(parser: argparse.ArgumentParser, dest: str) -> Subparsers:
    return parser.add_subparsers(dest=dest, required=True, parser_class=Parser)


def run(coro_fn: Callable[..., Any], *args: Any) -> Any:
    return asyncio.run(coro_fn(*args))


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Any]:
    """A migrated database engine, for commands that need no vector index."""
    from adapters.db.engine import create_engine, upgrade

    settings.prepare_data_dir()
    await upgrade(settings.db_url)
    engine = create_engine(settings.db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def operate(
    settings: Settings,
    op: str,
    params: dict,
    local: Callable[[Any], Any],
    on_progress: Callable[[dict], Any] | None = None,
    **build: Any,
) -> Any:
    """Run an index operation here, or in the service that owns the embedded index;
    `on_progress` receives the progress events of a streaming operation (`ask`) either way."""
    from bot.runtime import HandoffError, run_operation

    try:
        return asyncio.run(run_operation(settings, op, params, local, on_progress, **build))
    except HandoffError as exc:
        if exc.usage:
            raise UsageError(f"{op}: {exc}") from None
        raise RuntimeError(f"{op}: {exc}") from None


def print_json(data: Any, *, indent: int | None = None) -> None:
    import json

    print(json.dumps(data, indent=indent, ensure_ascii=False, default=str))
