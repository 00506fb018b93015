"""The Teams app package: `manifest/teams/manifest.json` filled in for one bot and one
public domain, zipped with its icons (what Teams' "Upload a custom app" takes)."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import manifest
from adapters.teams.icons import png_info

MANIFEST_DIR = Path(manifest.__file__).resolve().parent / "teams"  # package data
ICON_SIZES = {"color": (192, 192), "outline": (32, 32)}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$)(?:\*\.)?(?:{_LABEL}\.)+[a-z]{{2,63}}$")
_REQUIRED = (
    "$schema",
    "manifestVersion",
    "version",
    "id",
    "developer",
    "name",
    "description",
    "icons",
    "accentColor",
)


class PackageError(ValueError):
    """Input or a manifest that cannot make a valid package; nothing is written."""


def load_manifest() -> dict[str, Any]:
    return json.loads((MANIFEST_DIR / "manifest.json").read_text(encoding="utf-8"))


def sample_questions(data: dict[str, Any] | None = None) -> list[str]:
    """The bot's command list (shown in Teams' compose box): also the welcome's samples."""
    data = data or load_manifest()
    commands = []
    for bot in data.get("bots", []):
        for command_list in bot.get("commandLists", []):
            commands.extend(c["title"] for c in command_list.get("commands", []))
    return [c for c in commands if c.endswith("?")]


def build_manifest(app_id: str, domain: str) -> dict[str, Any]:
    try:
        app_id = str(uuid.UUID(app_id))
    except ValueError:
        raise PackageError(
            f"--app-id must be the bot's Microsoft App ID (a GUID), got {app_id!r}"
        ) from None
    domain = domain.strip().lower().removeprefix("https://").rstrip("/")
    if not _DOMAIN.match(domain):
        raise PackageError(f"--domain must be a host name such as bot.example.com, got {domain!r}")
    data = load_manifest()
    data["id"] = app_id
    for bot in data["bots"]:
        bot["botId"] = app_id
    data["validDomains"] = [domain]
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):  # same paths, this host
        url = urlsplit(data["developer"][key])
        data["developer"][key] = urlunsplit(url._replace(netloc=domain))
    problems = validate_manifest(data)
    if problems:
        raise PackageError(f"manifest/teams/manifest.json: {problems[0]}")
    return data


def validate_manifest(data: dict[str, Any], icons_dir: Path = MANIFEST_DIR) -> list[str]:
    """What Teams' validator would refuse first: required fields, the bot, the icons."""
    problems = [f"missing {key}" for key in _REQUIRED if not data.get(key)]
    if len(data.get("name", {}).get("short", "")) > 30:
        problems.append("name.short is longer than 30 characters")
    if len(data.get("description", {}).get("short", "")) > 80:
        problems.append("description.short is longer than 80 characters")
    bots = data.get("bots") or []
    if len(bots) != 1:
        problems.append("exactly one bot is expected")
    for bot in bots:
        if bot.get("botId") != data.get("id"):
            problems.append("bots[0].botId must be the app id")
        if set(bot.get("scopes", [])) != {"personal", "team", "groupChat"}:
            problems.append("the bot must have the personal, team and groupChat scopes")
        for command_list in bot.get("commandLists", []):
            commands = command_list.get("commands", [])
            if not 1 <= len(commands) <= 10:
                problems.append("a command list holds 1 to 10 commands")
            for command in commands:
                if not 0 < len(command.get("title", "")) <= 32:
                    problems.append(f"command title {command.get('title')!r}: 1 to 32 characters")
                if not 0 < len(command.get("description", "")) <= 128:
                    problems.append(f"command {command.get('title')!r}: description 1 to 128")
    if not data.get("validDomains"):
        problems.append("validDomains is empty")
    for kind, size in ICON_SIZES.items():
        name = (data.get("icons") or {}).get(kind)
        try:
            width, height, colour = png_info((icons_dir / str(name)).read_bytes())
        except (OSError, ValueError) as exc:
            problems.append(f"icons.{kind}: {exc}")
            continue
        if (width, height) != size:
            problems.append(f"icons.{kind} must be {size[0]}x{size[1]}, is {width}x{height}")
        if kind == "outline" and colour != 6:
            problems.append("icons.outline needs an alpha channel (transparent background)")
    return problems


def build_package(app_id: str, domain: str) -> bytes:
    data = build_manifest(app_id, domain)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        for kind in ICON_SIZES:
            name = data["icons"][kind]
            archive.writestr(name, (MANIFEST_DIR / name).read_bytes())
    return buffer.getvalue()
