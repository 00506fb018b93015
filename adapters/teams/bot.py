"""The Teams side of a conversation: an authenticated activity becomes a conversation-layer
turn or action, with Teams' surface and identity ports bound to the conversation it came
from. What happens around the answer (who asks, who reads, records, votes, the offer of a
person, tickets, the private answer) is core/conversation's.

Teams waits about 15 s for a turn. Work that is not done within ``reply_window_s`` goes on
after the turn has ended: the connector then sends proactively, with the conversation's
reference (kept in the database too, for ticket news and operators' messages later)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.teams.activities import (
    FeedbackEvent,
    TeamsUser,
    bot_added_in_personal_scope,
    conversation_reference,
    parse_card_submit,
    parse_feedback,
    parse_message,
    tenant_of,
)
from adapters.teams.connector import Connector
from adapters.teams.identity import Rosters, TeamsIdentity
from adapters.teams.ports import InvokeReply, Transport, Turn
from adapters.teams.render import render_welcome
from adapters.teams.store import TeamsStore
from adapters.teams.surface import Streams, TeamsSurface
from core.conversation.leases import Lease, current_lease
from core.conversation.ports import Chat
from core.conversation.service import ConversationService

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class TeamsConfig:
    reply_window_s: float = 12.0  # Teams waits ~15 s for a turn; past this, go proactive
    stream_interval_s: float = 1.0  # Teams allows about one streaming update a second
    sample_questions: tuple[str, ...] = ()


class TeamsBot:
    def __init__(
        self,
        transport: Transport,
        store: TeamsStore,
        conversations: ConversationService,
        rosters: Rosters,
        config: TeamsConfig | None = None,
    ) -> None:
        self._transport = transport
        self._store = store
        self._conversations = conversations
        self._rosters = rosters
        self.config = config or TeamsConfig()
        self._streams = Streams(self.config.stream_interval_s)
        self._tasks: set[asyncio.Task[None]] = set()

    def chat(self, connector: Connector, sender: TeamsUser) -> tuple[Chat, TeamsSurface]:
        """Teams' ports for one conversation; the sender's Bot Framework id is known."""
        ids = {sender.aad_object_id: sender.id} if sender.aad_object_id else {}
        surface = TeamsSurface(connector, self._store, self._streams, ids)
        return Chat(surface, TeamsIdentity(connector, self._rosters, ids)), surface

    async def on_turn(self, turn: Turn) -> InvokeReply | None:
        activity = turn.activity
        feedback = parse_feedback(activity)
        if feedback is not None:
            return await self._vote(turn, feedback)
        if activity.get("type") == "invoke":
            return InvokeReply(200, {})  # other invokes: acknowledged, nothing to do
        submit = parse_card_submit(activity)
        if submit is not None:
            actor = submit.user.chat_user(submit.tenant_id)
            await self._within_reply_window(
                turn,
                submit.user,
                lambda chat: self._conversations.act(submit.action, submit.request_id, actor, chat),
            )
            return None
        if bot_added_in_personal_scope(activity):
            await turn.send(render_welcome(list(self.config.sample_questions)))
            return None
        message = parse_message(activity)
        if message is not None:
            reference = conversation_reference(activity)

            async def answer(chat: Chat) -> None:
                # The reference is stored while the answer is prepared (the turn itself
                # goes proactive with the one in memory).
                await asyncio.gather(
                    self._remember(message.tenant_id, reference),
                    self._conversations.answer(message.turn(), chat, current_lease()),
                )

            await self._within_reply_window(turn, message.user, answer)
        return None  # other activity types are ignored

    async def redispatch(self, lease: Lease) -> None:
        """A message another replica took and never answered (it died mid-answer): answered
        here proactively, with the conversation reference the activity carries."""
        activity = (lease.payload or {}).get("activity")
        message = parse_message(activity) if isinstance(activity, dict) else None
        if message is None:  # buttons and invokes wanted their reply in the turn: gone
            await lease.complete()
            return
        connector = Connector(self._transport, conversation_reference(activity))
        chat, surface = self.chat(connector, message.user)
        try:
            await asyncio.gather(
                self._remember(message.tenant_id, conversation_reference(activity)),
                self._conversations.answer(message.turn(), chat, lease),
            )
        except Exception:
            lease.abandon()
            raise
        finally:
            surface.release_stream()
        await _completed(lease)

    async def _vote(self, turn: Turn, feedback: FeedbackEvent) -> InvokeReply:
        """👍/👎 from Teams' feedback loop: a vote on the answer the rated message shows."""
        try:
            request_id = await self._store.answer_shown_in(
                feedback.tenant_id, feedback.conversation_id, feedback.reply_to_id
            )
            if request_id is None:
                log.warning("teams feedback on a message that shows no answer")
                return InvokeReply(200, {})
            connector = Connector(self._transport, conversation_reference(turn.activity), turn)
            chat, _ = self.chat(connector, feedback.user)
            actor = feedback.user.chat_user(feedback.tenant_id)
            await self._conversations.act(feedback.action, request_id, actor, chat)
        except Exception:
            log.exception("teams feedback not stored")
            return InvokeReply(500, {"error": "feedback not stored"})
        return InvokeReply(200, {})

    async def _within_reply_window(
        self, turn: Turn, sender: TeamsUser, work: Callable[[Chat], Awaitable[Any]]
    ) -> None:
        """Run ``work`` with the turn's ports; if it is not done within the reply window,
        end the turn and let it go on proactively."""
        connector = Connector(self._transport, conversation_reference(turn.activity), turn)
        chat, surface = self.chat(connector, sender)
        lease = current_lease()
        if lease is not None:
            lease.hold()  # completed here, when the work is done, not when the turn ends

        async def run() -> None:
            try:
                await work(chat)
            except Exception:
                log.exception(
                    "teams turn failed", activity_id=turn.activity.get("id"),
                    tenant=tenant_of(turn.activity),
                )  # fmt: skip
                if lease is not None:
                    lease.abandon()
            finally:
                surface.release_stream()
            if lease is not None:
                await _completed(lease)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=self.config.reply_window_s)
        if not done:
            # End the turn now (Teams stops waiting at ~15 s); the rest goes out proactively.
            connector.end_turn()
            log.info("teams turn continues proactively", activity_id=turn.activity.get("id"))

    async def _remember(self, tenant_id: str, reference: dict[str, Any]) -> None:
        try:
            await self._store.save_reference(tenant_id, reference)
        except Exception as exc:  # later messages will store it; this answer goes on
            log.error("teams conversation reference not stored", error=type(exc).__name__)

    async def drain(self) -> None:
        """Wait for answers still being delivered (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def _completed(lease: Lease) -> None:
    try:
        await lease.complete()
    except Exception as exc:  # the lease runs out; a redelivery finds the answer recorded
        log.warning("teams claim not completed", key=lease.key, error=type(exc).__name__)
