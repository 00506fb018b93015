"""Who is asking and who will read the reply (ARCHITECTURE §3), on any platform.

The asker: the directory by platform id (each of the user's tenants in turn), else the email
the platform holds, which the directory then resolves by email when the answer flow runs.
The audience: a direct conversation → ``dm``; a public one → ``public``; a private one →
its members' emails (each resolved the same way; a member without one gets an address that
resolves to ``public`` only: fail closed); a private one whose members are not known, or a
conversation the platform cannot describe → ``public``.
"""

from __future__ import annotations

import time

from core.answering.types import Audience
from core.conversation.ports import Identity
from core.conversation.types import ChatUser, ConversationKind, ConversationRef
from core.directory import Directory, PlatformIdentity

UNKNOWN_MEMBER = "unknown-{platform}-member-{id}@invalid"  # resolves to `public` only


class People:
    def __init__(self, directory: Directory, audience_ttl_s: float = 300.0) -> None:
        self._directory = directory
        self._audience_ttl_s = audience_ttl_s
        # (platform, tenant, conversation) → (when, audience): one conversation id may be
        # seen from several tenants (a Slack channel shared between workspaces).
        self._audiences: dict[tuple[str, str, str], tuple[float, Audience]] = {}

    async def email_of(self, identity: Identity, platform: str, user: ChatUser) -> str | None:
        for tenant in filter(None, user.tenants):
            known = await self._directory.resolve_identity(
                PlatformIdentity(platform, tenant, user.id)
            )
            if known.known:
                return known.email
        email = await identity.email_of(user)
        return email.strip().lower() if email and email.strip() else None

    async def audience(
        self, identity: Identity, where: ConversationRef, tenants: tuple[str, ...]
    ) -> Audience:
        """``tenants``: where the directory may know the members (the asker's tenants)."""
        key = (where.platform, where.tenant, where.conversation)
        cached = self._audiences.get(key)
        if cached and time.monotonic() - cached[0] < self._audience_ttl_s:
            return cached[1]
        info = await identity.describe(where)
        if info is None:
            return Audience("public")  # not cached: the platform may answer next time
        if info.kind is ConversationKind.DIRECT:
            audience = Audience("dm")
        elif info.kind is ConversationKind.PRIVATE and info.members:
            emails = set()
            for member in info.members:
                email = await self.email_of(identity, where.platform, ChatUser(member, tenants))
                unknown = UNKNOWN_MEMBER.format(platform=where.platform, id=member.lower())
                emails.add(email or unknown)
            audience = Audience("members", tuple(sorted(emails)))
        else:
            audience = Audience("public")
        self._audiences[key] = (time.monotonic(), audience)
        return audience
