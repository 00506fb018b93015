"""`answerdesk release`: versioned answer settings (prompt, tiers and routing, retrieval,
gate, cache, policy). create / list / show / diff; activate behind the evaluation gate, or
on canary for a share of conversations; promote; rollback. README "Launch checklist and
releases"."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.commands.common import Subparsers, UsageError, database, print_json, run, subcommands
from bot.settings import Settings

if TYPE_CHECKING:
    from adapters.db.releases import SqlReleaseStore

ACTIVE = "active"  # `release diff active ID`: the release answering now


def register(sub: Subparsers) -> None:
    release = sub.add_parser(
        "release", help="versioned answer settings: create, activate, roll back"
    )
    release.set_defaults(handler=handle)
    rsub = subcommands(release, "release_command")
    create = rsub.add_parser("create", help="store a release file as a release")
    create.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE")
    create.add_argument("--note", required=True, help="why: shown in list, show and the console")
    _actor_and_json(create)
    listing = rsub.add_parser("list", help="every release, newest first, with its state")
    listing.add_argument("--json", action="store_true")
    show = rsub.add_parser("show", help="one release: content and history")
    show.add_argument("release", metavar="ID")
    show.add_argument("--json", action="store_true")
    diff = rsub.add_parser("diff", help="what changes from release A to release B")
    diff.add_argument("old", metavar="A", help=f"a release id, or '{ACTIVE}'")
    diff.add_argument("new", metavar="B", help=f"a release id, or '{ACTIVE}'")
    diff.add_argument("--json", action="store_true")
    activate = rsub.add_parser(
        "activate", help="run the evaluation gate, then make the release active (or canary)"
    )
    activate.add_argument("release", metavar="ID")
    activate.add_argument(
        "--share", type=int, metavar="N", help="canary: N%% of conversations (1-99)"
    )
    activate.add_argument("--force", action="store_true", help="activate although the gate fails")
    activate.add_argument("--reason", help="why the gate is overridden (with --force)")
    activate.add_argument("--library", metavar="FILE", help="the gate's evaluation library")
    _actor_and_json(activate)
    promote = rsub.add_parser("promote", help="the canary becomes the active release")
    _actor_and_json(promote)
    rollback = rsub.add_parser(
        "rollback", help="end the canary, or go back to the previously active release"
    )
    rollback.add_argument("--reason")
    _actor_and_json(rollback)


def _actor_and_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="actor", help="who does this (default: $USER)")
    parser.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    command = args.release_command
    if command == "create":
        return _create(settings, args)
    if command == "list":
        return _list(settings, args)
    if command == "show":
        return _show(settings, args)
    if command == "diff":
        return _diff(settings, args)
    if command == "activate":
        return _activate(settings, args)
    return _change(settings, args)


def actor(args: argparse.Namespace) -> str:
    name = (args.actor or os.environ.get("USER") or _login() or "").strip()
    if not name or len(name) > 128 or any(c in name for c in "\r\n"):
        raise UsageError("release: say who you are with --as NAME (1-128 characters)")
    return name


@asynccontextmanager
async def releases(settings: Settings, command: str) -> AsyncIterator[SqlReleaseStore]:
    """The release store; a change it refuses is the user's: one line, exit 2."""
    from adapters.db.releases import ReleaseError, SqlReleaseStore

    async with database(settings) as engine:
        try:
            yield SqlReleaseStore(engine)
        except ReleaseError as exc:
            raise UsageError(f"release {command}: {exc}") from None


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


# ---------------------------------------------------------------------------------- create


def _create(settings: Settings, args: argparse.Namespace) -> int:
    from bot.release_file import ReleaseFileError, content_hash, load_release_file, release_id

    note = args.note.strip()
    if not note:
        raise UsageError("release create: --note must say why (it is shown with the release)")
    who = actor(args)
    try:
        content = load_release_file(args.source)
    except ReleaseFileError as exc:
        raise UsageError(f"release create: {exc}") from None

    async def store() -> tuple[Any, bool]:
        async with releases(settings, "create") as store:
            return await store.create(
                release_id(content),
                content_hash(content),
                content,
                actor=who,
                note=note,
                origin="file",
            )

    stored, created = run(store)
    if args.json:
        print_json({**stored.summary(), "created": created})
    elif created:
        print(f"release {stored.id} created (activate it: answerdesk release activate {stored.id})")
    else:
        print(
            f"release {stored.id} has this content already (created {stored.created_at:%Y-%m-%d} "
            f"by {stored.created_by}: {stored.note})"
        )
    return 0


# ---------------------------------------------------------------------------- list / show


async def _overview(settings: Settings) -> dict[str, Any]:
    from bot.release_file import release_id, settings_release

    async with releases(settings, "list") as store:
        state = await store.state()
        stored = await store.releases()
        previous = await store.previous()
    configured = release_id(settings_release(settings))
    rows = []
    for r in stored:
        status = ""
        if r.id == state.active:
            status = "active"
        elif r.id == state.canary:
            status = f"canary {state.share}%"
        elif r.id == previous:
            status = "previous"
        rows.append({**r.summary(), "state": status})
    return {
        "active": state.active,
        "canary": state.canary,
        "canary_share": state.share if state.canary else None,
        "previous": previous,
        "configuration_file_release": configured,
        "answering": state.active or configured,
        "releases": rows,
    }


def _list(settings: Settings, args: argparse.Namespace) -> int:
    overview = run(_overview, settings)
    if args.json:
        print_json(overview)
        return 0
    if overview["active"] is None:
        print(
            f"no release is active: the configuration file's settings answer "
            f"(release {overview['configuration_file_release']})"
        )
    for row in overview["releases"]:
        print(
            f"{row['id']}  {row['state'] or '-':12} {row['created_at'][:16]}  "
            f"{row['created_by'][:20]:20} {row['note'][:70]}"
        )
    if not overview["releases"]:
        print("no releases yet (answerdesk release create --from FILE --note WHY)")
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    async def load() -> dict[str, Any]:
        async with releases(settings, "show") as store:
            found = await store.get(args.release)
            state = await store.state()
            events = await store.events(found.id)
        status = "active" if found.id == state.active else ""
        if found.id == state.canary:
            status = f"canary {state.share}%"
        return {**found.summary(), "state": status, "content": found.content, "events": events}

    shown = run(load)
    if args.json:
        print_json(shown)
        return 0
    print(f"release {shown['id']}  {shown['state']}")
    print(
        f"created {shown['created_at']} by {shown['created_by']} ({shown['origin']}): "
        f"{shown['note']}"
    )
    print(f"content hash {shown['content_hash']}")
    print()
    print(yaml.safe_dump(shown["content"], sort_keys=False, allow_unicode=True, width=100).rstrip())
    print()
    print("history:")
    for event in reversed(shown["events"]):
        print("  " + _describe(event))
    return 0


def _describe(event: dict[str, Any]) -> str:
    text = f"{event['at'][:19]}  {event['action']:10} by {event['actor']}"
    if event["share"]:
        text += f" ({event['share']}%)"
    if event["previous"]:
        text += f", replacing {event['previous']}"
    if event["forced"]:
        text += " — GATE OVERRIDDEN"
    gate = event.get("gate") or {}
    if gate.get("problem"):
        text += f"; gate: {gate['problem']}"
    elif gate:
        text += f"; gate passed ({gate.get('cases')} cases)"
    if event["reason"]:
        text += f"; reason: {event['reason']}"
    return text


# ------------------------------------------------------------------------------------ diff


def _diff(settings: Settings, args: argparse.Namespace) -> int:
    from bot.release_file import diff

    async def contents() -> tuple[tuple[str, dict], tuple[str, dict]]:
        async with releases(settings, "diff") as store:
            return (
                await _content(settings, store, args.old),
                await _content(settings, store, args.new),
            )

    (a_id, a), (b_id, b) = run(contents)
    changes = diff(a, b)
    if args.json:
        print_json({"old": a_id, "new": b_id, "changes": changes})
        return 0
    print(f"{a_id} → {b_id}: {len(changes)} change(s)")
    for change in changes:
        print(f"  {change['key']}: {_short(change['old'])} → {_short(change['new'])}")
    return 0


async def _content(settings: Settings, store: Any, reference: str) -> tuple[str, dict[str, Any]]:
    from bot.release_file import release_id, settings_release

    if reference == ACTIVE:
        state = await store.state()
        if state.active is None:
            content = settings_release(settings)
            return release_id(content), content
        reference = state.active
    found = await store.get(reference)
    return found.id, found.content


def _short(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 80 else text[:77] + "…"


# -------------------------------------------------------------------------------- activate


def _activate(settings: Settings, args: argparse.Namespace) -> int:
    from bot import operations
    from bot.commands.common import operate
    from bot.commands.eval import quiet_logging
    from bot.release_file import content_hash, release_id, settings_release
    from bot.release_gate import gate_library
    from core.evaluation.library import LibraryError, load_library

    who = actor(args)
    if args.share is not None and not 1 <= args.share <= 99:
        raise UsageError("release activate: --share must be a percentage from 1 to 99")
    reason = (args.reason or "").strip() or None
    if args.force and not reason:
        raise UsageError("release activate: --force needs --reason (why the gate is overridden)")
    if reason and not args.force:
        raise UsageError("release activate: --reason goes with --force")
    library_path = gate_library(settings, args.library)
    try:
        load_library(library_path)
    except LibraryError as exc:
        raise UsageError(f"release activate: {exc}") from None
    configured = settings_release(settings)
    quiet_logging(settings)  # one "answered" line per case would bury the verdict

    async def prepare() -> tuple[Any, Any]:
        async with releases(settings, "activate") as store:
            candidate = await store.get(args.release)
            state = await store.state()
            if state.canary is not None:
                raise UsageError(
                    f"release activate: release {state.canary} is on canary ({state.share}%): "
                    "promote it or roll it back first"
                )
            if candidate.id == (state.active or release_id(configured)):
                raise UsageError(f"release activate: release {candidate.id} is already active")
            if state.active is None:  # the configuration file's release: stored, to return to
                await store.create(
                    release_id(configured),
                    content_hash(configured),
                    configured,
                    actor=who,
                    note="the configuration file's settings, in effect before the first release",
                    origin="configuration",
                )
            return candidate, state

    candidate, state = run(prepare)
    active = state.active or release_id(configured)
    params = {"candidate": candidate.id, "active": active, "library": str(library_path)}
    verdict = operate(
        settings, "release_gate", params, lambda services: operations.release_gate(services, params)
    )
    if not verdict["passed"] and not args.force:
        run(_record_refusal, settings, candidate.id, who, verdict)
        if args.json:
            print_json({"activated": False, "release": candidate.id, "gate": verdict})
        print(f"release activate: refused: {verdict['problem']}", file=sys.stderr)
        return 1

    async def record() -> Any:
        async with releases(settings, "activate") as store:
            return await store.activate(
                candidate.id,
                actor=who,
                share=args.share,
                reason=reason,
                forced=args.force and not verdict["passed"],
                gate=verdict,
                configured=release_id(configured),
                expected=state,
            )

    new_state = run(record)
    if args.json:
        print_json(
            {
                "activated": True,
                "release": candidate.id,
                "replaced": active,
                "share": args.share,
                "forced": args.force and not verdict["passed"],
                "gate": verdict,
                "state": _state_json(new_state),
            }
        )
        return 0
    gate_line = (
        f"gate passed ({verdict['cases']} cases of {verdict['library']})"
        if verdict["passed"]
        else f"GATE OVERRIDDEN by {who} ({verdict['problem']}): {reason}"
    )
    where = f"on canary for {args.share}% of conversations" if args.share else "active"
    print(f"release {candidate.id} is {where}, replacing {active}; {gate_line}")
    print(f"every replica answers with it within {settings.releases.refresh_s:g} s")
    return 0


async def _record_refusal(settings: Settings, release: str, who: str, verdict: dict) -> None:
    async with releases(settings, "activate") as store:
        await store.refused(release, actor=who, gate=verdict)


def _state_json(state: Any) -> dict[str, Any]:
    return {"active": state.active, "canary": state.canary, "share": state.share or None}


# ----------------------------------------------------------------------- promote, rollback


def _change(settings: Settings, args: argparse.Namespace) -> int:
    who = actor(args)
    command = args.release_command

    async def change() -> tuple[str | None, Any]:
        async with releases(settings, command) as store:
            if command == "promote":
                return None, await store.promote(actor=who)
            return await store.rollback(actor=who, reason=(args.reason or "").strip() or None)

    ended, state = run(change)
    if args.json:
        print_json({"action": command, "rolled_back": ended, "state": _state_json(state)})
    elif command == "promote":
        print(f"release {state.active} is active for every conversation")
    else:
        print(f"rolled back {ended}: release {state.active} answers every conversation")
    return 0
