"""The directory: who people are and which groups they belong to (ARCHITECTURE §3).

Loaded from a YAML file (a top-level `users:` list) or a CSV file (a header row with the same
field names; groups separated by `;`). An identity the directory cannot resolve gets `public`
only: fail closed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from core.principals import PUBLIC, PrincipalError, parse_principal

FIELDS = (
    "email",
    "name",
    "groups",
    "slack_user_id",
    "slack_team_id",
    "teams_aad_object_id",
    "teams_tenant_id",
)


class DirectoryFileError(ValueError):
    """A directory file that cannot be imported; nothing is written."""


@dataclass(frozen=True, slots=True)
class PlatformIdentity:
    platform: str  # "slack" | "teams"
    tenant_id: str  # Slack team id or Teams tenant id ("" when not given)
    external_id: str  # Slack user id or Teams AAD object id


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    email: str
    name: str
    groups: tuple[str, ...]
    identities: tuple[PlatformIdentity, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolved:
    email: str | None
    known: bool
    principals: frozenset[str]


class Directory(Protocol):
    async def import_entries(self, entries: Sequence[DirectoryEntry], replace: bool) -> dict: ...

    async def resolve_email(self, email: str) -> Resolved: ...

    async def resolve_identity(self, identity: PlatformIdentity) -> Resolved: ...


def unknown(email: str | None = None) -> Resolved:
    return Resolved(email=email, known=False, principals=frozenset({PUBLIC}))


def load_directory_file(path: Path) -> list[DirectoryEntry]:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DirectoryFileError(f"directory file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DirectoryFileError(f"cannot read directory file {path}: {exc}") from exc
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(raw)
    elif path.suffix.lower() in {".yaml", ".yml"}:
        rows = _yaml_rows(raw)
    else:
        raise DirectoryFileError(f"{path}: directory files must be .yaml, .yml or .csv")
    entries = [_entry(row, number) for number, row in enumerate(rows, start=1)]
    emails = [e.email for e in entries]
    duplicates = sorted({e for e in emails if emails.count(e) > 1})
    if duplicates:
        raise DirectoryFileError(f"duplicate email(s) in directory file: {', '.join(duplicates)}")
    return entries


def _yaml_rows(raw: str) -> list[Mapping[str, Any]]:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise DirectoryFileError(f"invalid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("users"), list):
        raise DirectoryFileError("a YAML directory file needs a top-level 'users:' list")
    return data["users"]


def _csv_rows(raw: str) -> list[Mapping[str, Any]]:
    reader = csv.DictReader(io.StringIO(raw))
    header = reader.fieldnames or []
    if "email" not in header:
        raise DirectoryFileError("a CSV directory file needs a header row with an 'email' column")
    rows = []
    for row in reader:
        groups = row.get("groups") or ""
        rows.append({**row, "groups": [g.strip() for g in groups.split(";") if g.strip()]})
    return rows


def _entry(row: Any, number: int) -> DirectoryEntry:
    where = f"user {number}"
    if not isinstance(row, Mapping):
        raise DirectoryFileError(f"{where}: must be a mapping of fields")
    unknown_fields = set(row) - set(FIELDS)
    if unknown_fields:
        raise DirectoryFileError(
            f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown_fields)))}"
        )
    email = str(row.get("email") or "").strip().lower()
    try:
        parse_principal(f"user:{email}")
    except PrincipalError as exc:
        raise DirectoryFileError(f"{where}: invalid email {row.get('email')!r}") from exc
    groups_raw = row.get("groups") or []
    if isinstance(groups_raw, str):
        groups_raw = [groups_raw]
    if not isinstance(groups_raw, list):
        raise DirectoryFileError(f"{where} ({email}): groups must be a list")
    groups = []
    for group in groups_raw:
        name = str(group).strip().lower().removeprefix("group:")
        try:
            parse_principal(f"group:{name}")
        except PrincipalError as exc:
            raise DirectoryFileError(f"{where} ({email}): invalid group {group!r}") from exc
        groups.append(name)
    return DirectoryEntry(
        email=email,
        name=str(row.get("name") or email).strip(),
        groups=tuple(sorted(set(groups))),
        identities=tuple(_identities(row, email, where)),
    )


def _identities(row: Mapping[str, Any], email: str, where: str) -> Iterable[PlatformIdentity]:
    pairs = (
        ("slack", "slack_user_id", "slack_team_id"),
        ("teams", "teams_aad_object_id", "teams_tenant_id"),
    )
    for platform, id_field, tenant_field in pairs:
        external = str(row.get(id_field) or "").strip()
        tenant = str(row.get(tenant_field) or "").strip()
        if tenant and not external:
            raise DirectoryFileError(f"{where} ({email}): {tenant_field} given without {id_field}")
        if external:
            if platform == "teams":
                external, tenant = external.lower(), tenant.lower()
            yield PlatformIdentity(platform=platform, tenant_id=tenant, external_id=external)
