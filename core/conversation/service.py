"""A chat turn and the actions on a posted answer, once for every platform."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import structlog

from core.answering.redaction import redact_pii
from core.answering.types import Asker, Audience, Question
from core.conversation.durable import durably
from core.conversation.leases import Lease
from core.conversation.messages import (
    OFFER_HUMAN_TEXT,
    Action,
    AnswerMessage,
    TextMessage,
)
from core.conversation.people import People
from core.conversation.ports import Answerer, Chat, ConversationStore
from core.conversation.queue import AnswerQueue, Busy, busy_text
from core.conversation.types import ChatUser, ConversationRef, PostedAnswer, Turn
from core.directory import Directory
from core.handoff.texts import button_notice
from core.tickets import TicketProvider, TicketRequest

log = structlog.get_logger()
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    audience_ttl_s: float = 300.0  # how long a conversation's audience is reused
    offer_human_after_downs: int = 2  # 👎 in one thread before a person is offered
    # How long records, votes and tickets wait for a database that is down (a restart)
    # before they are given up: what people did meanwhile is stored when it is back.
    database_wait_s: float = 60.0


class ConversationService:
    """One per platform adapter (its own audience cache); the store is shared by all."""

    def __init__(
        self,
        answers: Answerer,
        directory: Directory,
        tickets: TicketProvider,
        store: ConversationStore,
        config: ConversationConfig | None = None,
        queue: AnswerQueue | None = None,
    ) -> None:
        self._answers = answers
        self._queue = queue  # the replica's answer slots, shared by every platform
        self._tickets = tickets
        self._store = store
        self.config = config or ConversationConfig()
        self.people = People(directory, self.config.audience_ttl_s)

    # --- a chat turn --------------------------------------------------------------------

    async def answer(
        self, turn: Turn, chat: Chat, lease: Lease | None = None
    ) -> PostedAnswer | None:
        """The turn's answer, once one of the replica's answer slots is free; when the
        question would wait too long for one, the asker is told at once that the service
        is busy and when to ask again (None: not answered)."""
        if self._queue is None:
            return await self._answer(turn, chat, lease)
        try:
            async with self._queue.slot():
                return await self._answer(turn, chat, lease)
        except Busy as busy:
            log.warning(
                "question set aside: busy",
                platform=turn.where.platform,
                reason=busy.reason.value,
                retry_after_s=round(busy.retry_after_s),
            )
            await chat.surface.post(turn.where, TextMessage(busy_text(busy)))
            return None

    async def _answer(self, turn: Turn, chat: Chat, lease: Lease | None) -> PostedAnswer:
        """A reply started at once (people see that the bot is on it), then who asks and
        who reads, the answer (its progress shown as it comes), its record, and the checked
        answer in place of whatever was shown. The record is written before the answer's
        buttons show, so they work. With the event's ``lease``, the working message is
        noted on the claim, and a takeover finishes in the one an earlier attempt posted."""
        where = turn.where
        if lease is not None and lease.resume_message and not turn.resume_message:
            turn = replace(turn, resume_message=lease.resume_message)
        # The working message and who asks/reads are independent round trips to the
        # platform, made together: both are on the way to the answer's first words.
        reply, (email, audience) = await asyncio.gather(
            chat.surface.reply(turn), self._durably(lambda: self._who(turn, chat), "asker")
        )
        if lease is not None:
            await _noted(lease, reply.message_id)
        answer = await self._answers.answer(
            Question(
                text=turn.text,
                asker=_asker(where, turn.asker, email),
                audience=audience,
                conversation_id=where.conversation_id,
                platform=where.platform,
                where=where,
            ),
            progress=reply.progress,
        )
        posted = PostedAnswer(
            answer.request_id, where, turn.asker.id, redact_pii(turn.text).text, reply.message_id
        )
        await self._durably(lambda: self._store.record(posted), "posted answer")
        if lease is not None and not await lease.still_held():
            # Another replica took the event over while this one could not renew its
            # claim: it answers (in the same working message); this answer stays unshown.
            log.warning("answer not shown: the event was taken over", key=lease.key)
            return posted
        shown = await reply.finish(AnswerMessage.shared(answer))
        if shown is not None and shown != posted.answer_message:
            posted = replace(posted, answer_message=shown)  # e.g. streamed into a new message
            await self._durably(lambda: self._store.record(posted), "posted answer")
        return posted

    async def _durably(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        return await durably(operation, what, self.config.database_wait_s)

    async def _who(self, turn: Turn, chat: Chat) -> tuple[str | None, Audience]:
        """The asker's email and the audience (in turn: the asker is often a member whose
        email the audience needs, then known)."""
        where = turn.where
        email = await self.people.email_of(chat.identity, where.platform, turn.asker)
        return email, await self.people.audience(chat.identity, where, turn.asker.tenants)

    async def answered_in(self, turn: Turn) -> bool:
        """Whether the bot answered in the turn's thread (a reply there is a follow-up)."""
        return await self._store.answered_in(turn.where)

    # --- buttons --------------------------------------------------------------------------

    async def act(self, action: Action, request_id: str, actor: ChatUser, chat: Chat) -> None:
        posted = await self._durably(lambda: self._store.get(request_id), "answer record")
        if posted is None:
            log.warning("button for an unknown request", request_id=request_id)
            return
        if action in (Action.HELPFUL, Action.NOT_HELPFUL):
            await self._vote(posted, actor, 1 if action is Action.HELPFUL else -1, chat)
        elif action is Action.HUMAN:
            await self._hand_off(posted, actor, chat)
        elif action is Action.PRIVATE:
            await self._answer_privately(posted, actor, chat)

    async def _vote(self, posted: PostedAnswer, actor: ChatUser, value: int, chat: Chat) -> None:
        downs = await self._durably(
            lambda: self._store.vote(posted.request_id, actor.id, value), "vote"
        )
        # Offered once per thread, whichever replica stores the deciding 👎: each vote counts
        # after its own write, so the later of two simultaneous votes sees both, and the
        # claim lets only one of them post.
        if (
            value < 0
            and downs >= self.config.offer_human_after_downs
            and await self._durably(
                lambda: self._store.claim(f"offer:{posted.where.thread_key}"), "offer"
            )
        ):
            offer = TextMessage(OFFER_HUMAN_TEXT, posted.request_id, offer_human=True)
            await chat.surface.post(posted.where, offer)

    async def _hand_off(self, posted: PostedAnswer, actor: ChatUser, chat: Chat) -> None:
        where = posted.where
        email = await self._durably(
            lambda: self.people.email_of(chat.identity, where.platform, actor), "asker"
        )
        request = TicketRequest(
            request_id=posted.request_id,
            conversation_id=where.conversation_id,
            asker=email,
            question=posted.question,
            reason=f"asked for a human ({where.platform} button)",
            where=where,
            asker_platform_id=actor.id,
        )
        # Written to the outbox first (one open ticket per conversation: a retry finds it).
        ticket = await self._durably(lambda: self._tickets.create(request), "ticket")
        if ticket.existing and ticket.request_id == posted.request_id:
            return  # a second click (or a retried one): the thread was told already
        await chat.surface.post(where, TextMessage(button_notice(ticket), posted.request_id))

    async def _answer_privately(self, posted: PostedAnswer, actor: ChatUser, chat: Chat) -> None:
        if actor.id != posted.asker_id:
            return  # only the asker may have the asker-only answer
        where = posted.where
        email = await self.people.email_of(chat.identity, where.platform, actor)
        answer = await self._answers.answer(
            Question(
                text=posted.question,
                asker=_asker(where, actor, email),
                audience=Audience("dm"),
                platform=where.platform,
            )
        )
        # Recorded like any posted answer, so the private answer's own buttons work too.
        await self._store.record(PostedAnswer(answer.request_id, where, actor.id, posted.question))
        await chat.surface.post_privately(where, actor.id, AnswerMessage.private(answer))


async def _noted(lease: Lease, message_id: str | None) -> None:
    """A lost note costs a second working message on a takeover, never the answer."""
    try:
        await lease.note(message_id)
    except Exception as exc:
        log.warning("working message not noted", key=lease.key, error=type(exc).__name__)


def _asker(where: ConversationRef, user: ChatUser, email: str | None) -> Asker:
    return Asker(
        email=email, platform=where.platform, platform_user_id=user.id, tenant_id=where.tenant
    )
