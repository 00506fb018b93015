"""Teams-only state in the database, shared by every replica: the conversation reference of
each conversation (what proactive messages are sent with: late answers, private answers,
ticket news) and which answer each of the bot's answer messages shows (Teams' feedback names
the message, not the request). Activity claims, posted answers and votes are the
conversation layer's (adapters/db/conversations.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import TeamsAnswerMessage, TeamsConversation


def teams_key(*parts: str) -> str:
    """Teams ids are long (a channel thread id runs past 100 characters): hashed to a key."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _thread_free(conversation_id: str) -> str:
    # A channel conversation id names its thread (";messageid=…"); message ids are unique in
    # the channel, and an invoke about a message may name the channel without the thread.
    return conversation_id.split(";", 1)[0]


class TeamsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)

    async def save_reference(self, tenant_id: str, reference: dict[str, Any]) -> str:
        """Store (or refresh) the conversation's reference; returns its key."""
        conversation_id = reference["conversation"]["id"]
        key = teams_key(tenant_id, conversation_id)
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

    async def reference(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(TeamsConversation, teams_key(tenant_id, conversation_id))
        return dict(row.reference) if row is not None else None

    async def remember_answer(
        self, tenant_id: str, conversation_id: str, message_id: str, request_id: str
    ) -> None:
        """The bot's message ``message_id`` shows the answer ``request_id``."""
        async with self._sessions() as session, session.begin():
            await session.merge(
                TeamsAnswerMessage(
                    key=teams_key(tenant_id, _thread_free(conversation_id), message_id),
                    request_id=request_id,
                    created_at=datetime.now(UTC),
                )
            )

    async def answer_shown_in(
        self, tenant_id: str, conversation_id: str, message_id: str
    ) -> str | None:
        """The request id of the answer the bot's message shows, None when it shows none."""
        key = teams_key(tenant_id, _thread_free(conversation_id), message_id)
        async with self._sessions() as session:
            row = await session.get(TeamsAnswerMessage, key)
        return row.request_id if row is not None else None
