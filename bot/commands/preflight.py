"""`answerdesk preflight`: the pre-launch checklist. Each item passes or fails with a
one-line reason and what to do; exit 0 only when every item passes. The run is stored and
the admin console shows the last one (README "Launch checklist and releases")."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from bot.commands.common import Subparsers, database, print_json, run
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    preflight = sub.add_parser("preflight", help="the pre-launch checklist; exit 0 when all pass")
    preflight.set_defaults(handler=handle)
    preflight.add_argument("--library", metavar="FILE", help="the evaluation library to hold")
    preflight.add_argument("--as", dest="actor", help="who runs it (default: $USER)")
    preflight.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from bot.commands.common import UsageError
    from bot.commands.eval import quiet_logging
    from bot.commands.release import actor
    from bot.release_gate import gate_library
    from core.evaluation.library import LibraryError, load_library

    who = actor(args)
    library = gate_library(settings, args.library)
    try:
        load_library(library)
    except LibraryError as exc:
        raise UsageError(f"preflight: {exc}") from None
    quiet_logging(settings)
    run_id = uuid.uuid4().hex[:12]
    run(_start, settings, run_id, who)
    status, items = "interrupted", None
    try:
        items = _items(settings, run_id, str(library))
        status = "passed" if all(i["passed"] for i in items) else "failed"
    finally:
        run(_finish, settings, run_id, status, items)
    if args.json:
        print_json({"run": run_id, "passed": status == "passed", "items": items})
    else:
        for i in items:
            mark = "PASS" if i["passed"] else "FAIL"
            print(f"{mark}  {i['name']:18} {i['reason']}")
            if not i["passed"] and i["action"]:
                print(f"      {'':18} → {i['action']}")
        failed = [i["name"] for i in items if not i["passed"]]
        print(
            f"\n{len(items) - len(failed)}/{len(items)} passed"
            + (f"; failing: {', '.join(failed)}" if failed else "; ready to launch")
        )
    return 0 if status == "passed" else 1


def _items(settings: Settings, run_id: str, library: str) -> list[dict[str, Any]]:
    from bot import operations
    from bot.commands.common import operate
    from bot.preflight import ordered

    params = {"run": run_id, "library": library}
    found = operate(settings, "preflight", params, lambda s: operations.preflight(s, params))
    others = run(_others, settings, found)
    return ordered([found["acl"], found["evaluation"], *others])


async def _others(settings: Settings, found: dict[str, Any]) -> list[dict[str, Any]]:
    from adapters.db.releases import SqlReleaseStore
    from bot.preflight import Facts, other_items
    from bot.release_file import with_release
    from bot.wiring import answer_config

    async with database(settings) as engine:
        store = SqlReleaseStore(engine)
        state = await store.state()
        release, prompt = settings, None
        active = await store.find(state.active) if state.active else None
        if active is not None:
            release, prompt = with_release(settings, active.content)
        tiers = answer_config(release, system_prompt=prompt).tiers
        facts = Facts(settings, engine, release, tiers, found["calls"], found["requests"])
        return await other_items(facts)


async def _start(settings: Settings, run_id: str, who: str) -> None:
    from adapters.db.preflight import PreflightStore

    async with database(settings) as engine:
        await PreflightStore(engine).start(run_id, who)


async def _finish(settings: Settings, run_id: str, status: str, items: Any) -> None:
    from adapters.db.preflight import PreflightStore

    async with database(settings) as engine:
        await PreflightStore(engine).finish(run_id, status, items)
