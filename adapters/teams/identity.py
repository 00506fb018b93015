"""Who is asking and who will read the reply, as far as that is Teams-specific: the Teams
implementation of the identity port of issue 12's conversation layer (`email_of`,
`members_of`).

An asker is found in the directory by Entra object id + tenant, else by the email the
conversation roster gives for them, else not at all (`public` only: fail closed). A 1:1
chat is read by the asker (`dm`); a group chat or channel by every member of its roster
(a channel: its team), cached for `member_cache_ttl_s`.
"""

from __future__ import annotations

import re
import time

import structlog

from adapters.teams.activities import CHANNEL, PERSONAL, TeamsUser
from adapters.teams.ports import Turn
from core.answering.types import Audience
from core.directory import Directory, PlatformIdentity

log = structlog.get_logger()
UNKNOWN_MEMBER = "unknown-teams-member-{}@invalid"  # resolves to `public` only: fail closed


class TeamsIdentity:
    def __init__(self, directory: Directory, member_cache_ttl_s: float = 300.0) -> None:
        self._directory = directory
        self._ttl_s = member_cache_ttl_s
        self._audiences: dict[tuple[str, str], tuple[float, Audience]] = {}

    async def email_of(self, roster: Turn, tenant_id: str, user: TeamsUser) -> str | None:
        email = await self._directory_email(tenant_id, user.aad_object_id)
        if email:
            return email
        try:
            member = await roster.member(user.id)
        except Exception as exc:  # the roster is unreachable: the asker stays unknown
            log.warning("teams member lookup failed", error=type(exc).__name__)
            return None
        return _email(member)

    async def members_of(
        self,
        roster: Turn,
        tenant_id: str,
        conversation_id: str,
        conversation_type: str,
        team_id: str | None = None,
    ) -> Audience:
        if conversation_type == PERSONAL:
            return Audience("dm")
        # A channel's readers are its team's members (the roster the SDK returns for it).
        key = (tenant_id, team_id if conversation_type == CHANNEL and team_id else conversation_id)
        cached = self._audiences.get(key)
        if cached and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        try:
            members = await roster.members()
        except Exception as exc:
            log.warning("teams member list failed", error=type(exc).__name__)
            return Audience("public")  # unknown readers: the safest audience
        emails = set()
        for member in members:
            aad = str(member.get("aadObjectId") or "").lower() or None
            email = await self._directory_email(tenant_id, aad) or _email(member)
            emails.add(email or _unknown(str(member.get("id") or "")))
        audience = Audience("members", tuple(sorted(emails))) if emails else Audience("public")
        self._audiences[key] = (time.monotonic(), audience)
        return audience

    async def _directory_email(self, tenant_id: str, aad_object_id: str | None) -> str | None:
        if not aad_object_id:
            return None
        known = await self._directory.resolve_identity(
            PlatformIdentity("teams", tenant_id, aad_object_id)
        )
        return known.email if known.known else None


def _unknown(member_id: str) -> str:
    return UNKNOWN_MEMBER.format(re.sub(r"[^a-z0-9._-]", "-", member_id.lower()) or "anonymous")


def _email(member: dict | None) -> str | None:
    email = (member or {}).get("email")
    return str(email).strip().lower() or None if email else None
