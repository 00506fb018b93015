"""Teams' identity port (core/conversation/ports.py): a person's email from the conversation's
roster (`TeamsInfo.get_member`) and a conversation's kind and members (the paged member
list; a channel's readers are its team's members).

The conversation layer asks the directory first (Entra object id + tenant) and this port
only for what the directory does not know. What Teams says is kept for
`teams.member_cache_ttl_s`: a member list read for one question also gives its members'
emails, so an audience costs one paged read, not one call per member.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog

from adapters.teams.activities import CHANNEL, PERSONAL, kind_of
from adapters.teams.connector import Connector
from core.conversation.types import ChatUser, ConversationInfo, ConversationKind, ConversationRef

log = structlog.get_logger()


class Rosters:
    """What Teams said about people and member lists, shared by every turn of a process."""

    def __init__(self, ttl_s: float = 300.0) -> None:
        self._ttl_s = ttl_s
        self._emails: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._members: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}

    def email(self, tenant: str, user_id: str) -> tuple[bool, str | None]:
        """(known and fresh, email: None when Teams has none for them)."""
        found = self._emails.get((tenant, user_id))
        if found is None or time.monotonic() - found[0] >= self._ttl_s:
            return False, None
        return True, found[1]

    def members(self, tenant: str, roster: str) -> tuple[str, ...] | None:
        found = self._members.get((tenant, roster))
        if found is None or time.monotonic() - found[0] >= self._ttl_s:
            return None
        return found[1]

    def keep_email(self, tenant: str, user_id: str, email: str | None) -> None:
        self._emails[(tenant, user_id)] = (time.monotonic(), email)

    def keep_members(
        self, tenant: str, roster: str, members: list[dict[str, Any]]
    ) -> tuple[str, ...]:
        ids = []
        for member in members:
            member_id = _id_of(member)
            if member_id:
                ids.append(member_id)
                self.keep_email(tenant, member_id, _email(member))
        self._members[(tenant, roster)] = (time.monotonic(), tuple(ids))
        return tuple(ids)


class TeamsIdentity:
    """The identity port for one conversation, reached through ``connector``.
    ``bot_framework_ids``: Entra object id → Bot Framework id of people the turn names
    (the roster answers to either; the sender's own id saves a lookup)."""

    def __init__(
        self,
        connector: Connector,
        rosters: Rosters,
        bot_framework_ids: Mapping[str, str] | None = None,
    ) -> None:
        self._connector = connector
        self._rosters = rosters
        self._ids = dict(bot_framework_ids or {})

    async def email_of(self, user: ChatUser) -> str | None:
        tenant = user.tenants[0] if user.tenants else ""
        fresh, email = self._rosters.email(tenant, user.id)
        if fresh:
            return email
        try:
            member = await self._connector.member(self._ids.get(user.id, user.id))
        except Exception as exc:  # not in the roster, or Teams unreachable: unknown for now
            log.warning("teams member lookup failed", error=type(exc).__name__)
            return None
        email = _email(member)
        self._rosters.keep_email(tenant, user.id, email)
        return email

    async def describe(self, where: ConversationRef) -> ConversationInfo | None:
        kind = where.extra.get("conversation_type") or kind_of(where.conversation)
        if kind == PERSONAL:
            return ConversationInfo(ConversationKind.DIRECT)
        # A channel is read by its team (the member list Teams gives for it): one roster
        # for every thread of every channel of the team.
        team = where.extra.get("team_id")
        roster = team if kind == CHANNEL and team else where.conversation
        members = self._rosters.members(where.tenant, roster)
        if members is None:
            try:
                found = await self._connector.members()
            except Exception as exc:
                log.warning("teams member list failed", error=type(exc).__name__)
                return None  # unknown readers: the layer answers for the safest audience
            members = self._rosters.keep_members(where.tenant, roster, found)
        return ConversationInfo(ConversationKind.PRIVATE, members)


def _id_of(member: dict[str, Any]) -> str:
    aad = str(member.get("aadObjectId") or "").strip().lower()
    return aad or str(member.get("id") or "")


def _email(member: dict[str, Any] | None) -> str | None:
    email = str((member or {}).get("email") or "").strip().lower()
    return email or None
