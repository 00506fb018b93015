"""The conversation store on the database: posted answers, votes, one-off claims and leased
event claims, shared by every replica and every platform."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker, upsert_insert
from adapters.db.models import ConversationClaim, Feedback, PostedAnswerRow
from adapters.db.writes import writes_for
from core.conversation.leases import Taken
from core.conversation.types import ConversationRef, PostedAnswer, Vote

_CLAIMS = ConversationClaim.__table__
_POSTED = PostedAnswerRow.__table__


class SqlConversationStore:
    """The writes on every answer's path (record, take, renew, complete) are plain
    statements run in one trip each (adapters/db/writes.py), not ORM units of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = sessionmaker(engine)
        self._insert = upsert_insert(engine)
        self._writes = writes_for(engine)

    async def record(self, posted: PostedAnswer) -> None:
        where = posted.where
        row = {
            "platform": where.platform,
            "tenant_id": where.tenant,
            "conversation_id": where.conversation,
            "thread_id": where.thread,
            "message_id": where.message,
            "answer_message_id": posted.answer_message,
            "asker_id": posted.asker_id,
            "question": posted.question,
            "extra": dict(where.extra) or None,
            "created_at": datetime.now(UTC),
        }
        # Stored or replaced whole under its request id, in one statement.
        statement = (
            self._insert(_POSTED)
            .values(request_id=posted.request_id, **row)
            .on_conflict_do_update(index_elements=[_POSTED.c.request_id], set_=row)
        )
        await self._writes.run(lambda conn: conn.execute(statement))

    async def get(self, request_id: str) -> PostedAnswer | None:
        async with self._sessions() as session:
            row = await session.get(PostedAnswerRow, request_id)
        if row is None:
            return None
        where = ConversationRef(
            platform=row.platform,
            tenant=row.tenant_id,
            conversation=row.conversation_id,
            thread=row.thread_id,
            message=row.message_id,
            extra=dict(row.extra or {}),
        )
        return PostedAnswer(
            row.request_id, where, row.asker_id, row.question, row.answer_message_id
        )

    async def answered_in(self, where: ConversationRef) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(PostedAnswerRow.request_id)
                .where(*_in_thread(where.platform, where.conversation, where.thread))
                .limit(1)
            )
        return found is not None

    async def vote(self, request_id: str, voter: str, value: int) -> int:
        now = datetime.now(UTC)
        # An upsert, so two clicks of one person at the same moment cannot collide.
        statement = self._insert(Feedback).values(
            request_id=request_id, voter_id=voter, value=value, created_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[Feedback.request_id, Feedback.voter_id],
            set_={"value": value, "created_at": now},
        )
        async with self._sessions() as session, session.begin():
            await session.execute(statement)
            answer = await session.get(PostedAnswerRow, request_id)
        if answer is None:
            return 0
        thread = _in_thread(answer.platform, answer.conversation_id, answer.thread_id)
        # Counted after the vote's own commit (see ConversationService._vote).
        async with self._sessions() as session:
            downs = await session.scalar(
                select(func.count())
                .select_from(Feedback)
                .join(PostedAnswerRow, PostedAnswerRow.request_id == Feedback.request_id)
                .where(*thread, Feedback.value < 0)
            )
        return int(downs or 0)

    async def votes(self, request_id: str) -> list[Vote]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Feedback)
                .where(Feedback.request_id == request_id)
                .order_by(Feedback.created_at, Feedback.voter_id)
            )
            return [Vote(row.voter_id, row.value) for row in rows]

    async def feedback_for(self, request_id: str) -> list[dict[str, object]]:
        """The votes as `trace show` prints them."""
        return [{"user": v.voter, "value": v.value} for v in await self.votes(request_id)]

    async def claim(self, key: str) -> bool:
        try:
            async with self._sessions() as session, session.begin():
                session.add(ConversationClaim(claim_key=key, claimed_at=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True

    # --- leased event claims (core/conversation/leases.py) ---------------------------------

    async def take(
        self, key: str, owner: str, lease_s: float, payload: Mapping[str, Any] | None
    ) -> Taken | None:
        now = datetime.now(UTC)
        until = now + timedelta(seconds=lease_s)
        claim = insert(_CLAIMS).values(
            claim_key=key,
            claimed_at=now,
            owner=owner,
            lease_until=until,
            attempts=1,
            payload=dict(payload) if payload is not None else None,
        )
        try:
            await self._writes.run(lambda conn: conn.execute(claim))
            return Taken(key, payload, None, 1)
        except IntegrityError:
            pass
        # Taken over only when its lease ran out before it was done (or it is the owner's
        # own, inserted by an attempt whose commit was not acknowledged): one UPDATE, so
        # two replicas taking over at the same moment cannot both succeed.
        takeover = (
            update(_CLAIMS)
            .where(
                _CLAIMS.c.claim_key == key,
                _CLAIMS.c.completed_at.is_(None),
                _CLAIMS.c.lease_until.is_not(None),
                or_(_CLAIMS.c.lease_until < now, _CLAIMS.c.owner == owner),
            )
            .values(owner=owner, lease_until=until, attempts=_CLAIMS.c.attempts + 1)
        )
        read = select(_CLAIMS.c.payload, _CLAIMS.c.note, _CLAIMS.c.attempts).where(
            _CLAIMS.c.claim_key == key
        )

        def take_over(conn: Connection) -> Taken | None:
            if conn.execute(takeover).rowcount != 1:
                return None
            row = conn.execute(read).one()
            return Taken(key, row.payload, row.note, row.attempts)

        return await self._writes.run(take_over)

    async def renew(self, key: str, owner: str, lease_s: float, note: str | None) -> bool:
        values: dict[str, Any] = {"lease_until": datetime.now(UTC) + timedelta(seconds=lease_s)}
        if note is not None:
            values["note"] = note
        statement = (
            update(_CLAIMS)
            .where(
                _CLAIMS.c.claim_key == key,
                _CLAIMS.c.owner == owner,
                _CLAIMS.c.completed_at.is_(None),
            )
            .values(**values)
        )
        return await self._writes.run(lambda conn: conn.execute(statement).rowcount == 1)

    async def complete(self, key: str, owner: str) -> None:
        statement = (
            update(_CLAIMS)
            .where(_CLAIMS.c.claim_key == key, _CLAIMS.c.owner == owner)
            .values(completed_at=datetime.now(UTC), payload=None)
        )
        await self._writes.run(lambda conn: conn.execute(statement))

    async def expired(self, prefixes: tuple[str, ...], max_attempts: int, limit: int) -> list[str]:
        if not prefixes:
            return []
        async with self._sessions() as session:
            keys = await session.scalars(
                select(ConversationClaim.claim_key)
                .where(
                    ConversationClaim.completed_at.is_(None),
                    ConversationClaim.lease_until.is_not(None),
                    ConversationClaim.lease_until < datetime.now(UTC),
                    ConversationClaim.attempts < max_attempts,
                    or_(*(ConversationClaim.claim_key.startswith(p) for p in prefixes)),
                )
                .order_by(ConversationClaim.lease_until)
                .limit(limit)
            )
            return list(keys)


def _in_thread(platform: str, conversation: str, thread: str) -> tuple[ColumnElement[bool], ...]:
    """Answers in one thread, whichever tenant's member asked (ConversationRef.thread_key)."""
    return (
        PostedAnswerRow.platform == platform,
        PostedAnswerRow.conversation_id == conversation,
        PostedAnswerRow.thread_id == thread,
    )
