"""The console's state in the database, shared by every replica: logins (password hashes
only), sessions, refused logins (for rate limiting), the audit log and the signing key."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import as_utc, sessionmaker
from adapters.db.models import AdminAudit, AdminKey, AdminLoginFailure, AdminSession, AdminUser


class AdminStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

    # --- logins ------------------------------------------------------------------------

    async def set_user(self, name: str, password_hash: str, source: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.merge(
                AdminUser(
                    name=name,
                    password_hash=password_hash,
                    source=source,
                    updated_at=datetime.now(UTC),
                )
            )

    async def remove_users(self, source: str, keep: str | None = None) -> None:
        """Drop the logins from `source` (and their sessions), except `keep`."""
        which = [AdminUser.source == source, *([AdminUser.name != keep] if keep else [])]
        async with self._sessions() as session, session.begin():
            names = select(AdminUser.name).where(*which)
            await session.execute(delete(AdminSession).where(AdminSession.admin.in_(names)))
            await session.execute(delete(AdminUser).where(*which))

    async def password_hash(self, name: str) -> str | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(AdminUser.password_hash).where(AdminUser.name == name)
            )

    async def has_users(self) -> bool:
        async with self._sessions() as session:
            return bool(await session.scalar(select(func.count()).select_from(AdminUser)))

    # --- sessions ----------------------------------------------------------------------

    async def open_session(self, token_hash: str, admin: str, csrf: str, ttl_s: float) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            await session.execute(delete(AdminSession).where(AdminSession.expires_at < now))
            session.add(
                AdminSession(
                    token_hash=token_hash,
                    admin=admin,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                )
            )

    async def session(self, token_hash: str) -> tuple[str, str] | None:
        """(admin, CSRF token) of a live session."""
        async with self._sessions() as session:
            row = await session.get(AdminSession, token_hash)
        if row is None or as_utc(row.expires_at) <= datetime.now(UTC):
            return None
        return row.admin, row.csrf

    async def close_session(self, token_hash: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(AdminSession).where(AdminSession.token_hash == token_hash))

    # --- refused logins ----------------------------------------------------------------

    async def refused_recently(self, name: str, client: str, window_s: float) -> int:
        """The larger of the refusals for this name and from this client in the window."""
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(AdminLoginFailure.name, AdminLoginFailure.client).where(
                        AdminLoginFailure.at >= since,
                        or_(AdminLoginFailure.name == name, AdminLoginFailure.client == client),
                    )
                )
            ).all()
        return max(sum(1 for n, _ in rows if n == name), sum(1 for _, c in rows if c == client))

    async def refuse(self, name: str, client: str, window_s: float) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(AdminLoginFailure).where(
                    AdminLoginFailure.at < now - timedelta(seconds=window_s)
                )
            )
            session.add(AdminLoginFailure(at=now, name=name[:64], client=client[:64]))

    # --- audit -------------------------------------------------------------------------

    async def audit(
        self,
        admin: str,
        action: str,
        client: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self._sessions() as session, session.begin():
            session.add(
                AdminAudit(
                    at=datetime.now(UTC),
                    admin=admin[:64],
                    action=action,
                    target=target[:128] if target else None,
                    detail=detail or {},
                    client=client[:64],
                )
            )

    async def audit_log(self, limit: int = 200, target: str | None = None) -> list[dict]:
        stmt = select(AdminAudit).order_by(AdminAudit.id.desc()).limit(limit)
        if target is not None:
            stmt = stmt.where(AdminAudit.target == target)
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [
            {
                "at": as_utc(r.at).isoformat(timespec="seconds"),
                "admin": r.admin,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
                "client": r.client,
            }
            for r in rows
        ]

    # --- signing key -------------------------------------------------------------------

    async def key(self, name: str) -> str:
        """A random key made once and shared by every replica (first writer wins)."""
        async with self._sessions() as session:
            value = await session.scalar(select(AdminKey.value).where(AdminKey.name == name))
        if value is not None:
            return value
        try:
            async with self._sessions() as session, session.begin():
                session.add(AdminKey(name=name, value=secrets.token_urlsafe(48)))
        except IntegrityError:
            pass
        async with self._sessions() as session:
            return str(await session.scalar(select(AdminKey.value).where(AdminKey.name == name)))
