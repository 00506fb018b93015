"""Teams state in the database, shared by every replica: which activities were taken, and
the conversation reference of each conversation (for proactive messages)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import TeamsClaim, TeamsConversation


def _key(*parts: str) -> str:
    # Teams ids are long (a channel thread id runs past 100 characters): hashed to a key.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class TeamsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

    async def claim(self, *parts: str) -> bool:
        """True the first time a key (an activity: conversation id + activity id) is seen, on
        any replica; False for a redelivery. The one place Teams claims work once: issue 12's
        platform-neutral claim table replaces this body."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(TeamsClaim(key=_key(*parts), received_at=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True

    async def save_reference(self, tenant_id: str, reference: dict[str, Any]) -> str:
        """Store (or refresh) the conversation's reference; returns its key."""
        conversation_id = reference["conversation"]["id"]
        key = _key(tenant_id, conversation_id)
        # Two messages of one chat (on one replica or two) may store it at the same moment:
        # update, else insert; an insert that lost that race becomes the update.
        for _attempt in range(2):
            now = datetime.now(UTC)
            try:
                async with self._sessions() as session, session.begin():
                    updated = await session.execute(
                        update(TeamsConversation)
                        .where(TeamsConversation.key == key)
                        .values(reference=reference, updated_at=now)
                    )
                    if updated.rowcount == 0:  # type: ignore[attr-defined]
                        session.add(
                            TeamsConversation(
                                key=key,
                                tenant_id=tenant_id,
                                conversation_id=conversation_id,
                                reference=reference,
                                updated_at=now,
                            )
                        )
                return key
            except IntegrityError:
                continue
        return key

    async def reference(self, key: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(TeamsConversation, key)
        return dict(row.reference) if row is not None else None
