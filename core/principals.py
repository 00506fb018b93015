"""Principals: who may read a document (ARCHITECTURE §3).

A principal is `public` (every signed-in employee), `group:<name>` or `user:<email>`.
Names and emails are lower-cased so that rules written by hand match directory data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

PUBLIC = "public"

_GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9._\- ]*$")
_EMAIL_RE = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")


class PrincipalError(ValueError):
    """A principal string that is not one of the known forms."""


def parse_principal(raw: str) -> str:
    """Return the canonical form of a principal, or raise PrincipalError."""
    if not isinstance(raw, str):
        raise PrincipalError(f"principal must be a string, got {raw!r}")
    value = raw.strip()
    if value.lower() == PUBLIC:
        return PUBLIC
    kind, sep, name = value.partition(":")
    kind, name = kind.strip().lower(), name.strip().lower()
    if sep and kind == "group" and _GROUP_RE.match(name):
        return f"group:{name}"
    if sep and kind == "user" and _EMAIL_RE.match(name):
        return f"user:{name}"
    raise PrincipalError(
        f"unknown principal {raw!r} (expected 'public', 'group:<name>' or 'user:<email>')"
    )


def parse_principals(raw: Iterable[str]) -> frozenset[str]:
    principals = frozenset(parse_principal(item) for item in raw)
    if not principals:
        raise PrincipalError("an ACL must allow at least one principal")
    return principals


def principals_for_user(email: str | None, groups: Iterable[str]) -> frozenset[str]:
    """Everything a known user is: themselves, their groups and `public`."""
    found = {PUBLIC}
    if email:
        found.add(parse_principal(f"user:{email}"))
    found.update(parse_principal(f"group:{group}") for group in groups)
    return frozenset(found)


def acl_key(principals: Iterable[str]) -> str:
    """A short, stable name for a set of principals: equal sets get equal keys."""
    canonical = "\n".join(sorted(set(principals)))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def may_read(requester: frozenset[str], acl: Iterable[str]) -> bool:
    """A requester may read a document when they hold any principal its ACL allows."""
    return not requester.isdisjoint(acl)


class Access:
    """Who must be able to read what an answer uses: every reader set must pass the ACL.

    A DM has one reader (the asker). A private channel has the asker and every member: a
    document qualifies only when each of them may read it, which is not the same as the
    intersection of their principal sets (one may be in `group:hr`, another named by email).
    """

    __slots__ = ("readers",)

    def __init__(self, *readers: frozenset[str]) -> None:
        if not readers:
            raise ValueError("Access needs at least one reader")
        self.readers: tuple[frozenset[str], ...] = readers

    def allows(self, acl: Iterable[str]) -> bool:
        acl = frozenset(acl)
        return all(may_read(reader, acl) for reader in self.readers)

    @property
    def principals(self) -> frozenset[str]:
        """The principals every reader holds: for display and traces."""
        return frozenset.intersection(*self.readers)

    def __repr__(self) -> str:
        return f"Access({', '.join(str(sorted(r)) for r in self.readers)})"
