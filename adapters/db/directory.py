"""The Directory port on SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import DirectoryMembership, DirectoryUser
from adapters.db.models import PlatformIdentity as IdentityRow
from adapters.db.reader import row_reader
from core.directory import DirectoryEntry, PlatformIdentity, Resolved, unknown
from core.principals import principals_for_user

_GROUPS_OF_USER = (
    select(DirectoryUser.email, DirectoryMembership.group_name)
    .outerjoin(DirectoryMembership, DirectoryMembership.email == DirectoryUser.email)
    .where(DirectoryUser.email == bindparam("email"))
)
_EMAIL_OF_IDENTITY = select(IdentityRow.email).where(
    IdentityRow.platform == bindparam("platform"),
    IdentityRow.external_id == bindparam("external"),
    IdentityRow.tenant_id.in_([bindparam("tenant"), ""]),
)


class SqlDirectory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)
        self._reads = row_reader(engine)

    async def import_entries(self, entries: Sequence[DirectoryEntry], replace: bool) -> dict:
        """Upsert every entry in one transaction; `replace` drops users missing from it."""
        now = datetime.now(UTC)
        emails = [e.email for e in entries]
        async with self._sessions() as session, session.begin():
            existing = set(await session.scalars(select(DirectoryUser.email)))
            removed = sorted(existing - set(emails)) if replace else []
            if removed:
                await session.execute(delete(DirectoryUser).where(DirectoryUser.email.in_(removed)))
            touched = [*emails, *removed]
            if touched:
                await session.execute(
                    delete(DirectoryMembership).where(DirectoryMembership.email.in_(touched))
                )
                await session.execute(delete(IdentityRow).where(IdentityRow.email.in_(touched)))
            # An identity moved to another user in this file must not collide with its old row.
            ids = [(i.platform, i.tenant_id, i.external_id) for e in entries for i in e.identities]
            if ids:
                await session.execute(
                    delete(IdentityRow).where(
                        or_(
                            *(
                                (IdentityRow.platform == p)
                                & (IdentityRow.tenant_id == t)
                                & (IdentityRow.external_id == x)
                                for p, t, x in ids
                            )
                        )
                    )
                )
            await session.flush()
            for entry in entries:
                await session.merge(
                    DirectoryUser(email=entry.email, name=entry.name, updated_at=now)
                )
            await session.flush()
            session.add_all(
                DirectoryMembership(email=e.email, group_name=g) for e in entries for g in e.groups
            )
            session.add_all(
                IdentityRow(
                    platform=i.platform,
                    tenant_id=i.tenant_id,
                    external_id=i.external_id,
                    email=e.email,
                )
                for e in entries
                for i in e.identities
            )
        return {
            "imported": len(entries),
            "created": len(set(emails) - existing),
            "updated": len(set(emails) & existing),
            "removed": len(removed),
        }

    async def resolve_email(self, email: str) -> Resolved:
        email = email.strip().lower()
        # Every question starts here: a prebuilt Core statement, one thread hand-off.
        rows = await self._reads.all(_GROUPS_OF_USER, {"email": email})
        if not rows:
            return unknown(email)
        groups = [group for _, group in rows if group is not None]
        return Resolved(email=email, known=True, principals=principals_for_user(email, groups))

    async def resolve_identity(self, identity: PlatformIdentity) -> Resolved:
        external, tenant = identity.external_id, identity.tenant_id
        if identity.platform == "teams":
            external, tenant = external.lower(), tenant.lower()
        # Every chat question starts here too: prebuilt, one thread hand-off.
        email = await self._reads.scalar(
            _EMAIL_OF_IDENTITY,
            {"platform": identity.platform, "external": external, "tenant": tenant},
        )
        if email is None:
            return unknown()
        return await self.resolve_email(email)

    async def people(self, limit: int = 1000) -> list[tuple[str, str]]:
        """(email, name) of the directory's users, by name: whom the console may ask as."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(DirectoryUser.email, DirectoryUser.name)
                .order_by(DirectoryUser.name)
                .limit(limit)
            )
            return [(email, name) for email, name in rows]
