"""Teams' surface port (core/conversation/ports.py): the conversation layer's messages as Bot
Framework activities, sent into a conversation through a :class:`Connector` (inside the turn
while Teams waits, proactively after), streamed in 1:1 chats.

Every answer message sent is remembered with its request id (Teams' feedback loop names the
rated message); a private answer goes to the person's 1:1 chat with the bot, whose reference
is kept like any other. Failures are logged and come back as None / False, as the port asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from adapters.teams.activities import PERSONAL, kind_of
from adapters.teams.connector import Connector
from adapters.teams.ports import Activity, Transport
from adapters.teams.render import render_message, render_typing
from adapters.teams.store import TeamsStore
from adapters.teams.streaming import FinalReply, StreamingReply
from core.conversation.messages import AnswerMessage, Message, request_id_of
from core.conversation.ports import Reply, Unreachable
from core.conversation.types import ConversationRef, Turn

log = structlog.get_logger()


@dataclass(slots=True)
class Streams:
    """Chats of this process with a stream open: Teams allows one per chat at a time."""

    interval_s: float = 1.0  # Teams allows about one streaming update a second
    open: set[str] = field(default_factory=set)


class TeamsSurface:
    def __init__(
        self,
        connector: Connector,
        store: TeamsStore,
        streams: Streams,
        bot_framework_ids: Mapping[str, str] | None = None,
    ) -> None:
        self._connector = connector
        self._store = store
        self._streams = streams
        self._ids = dict(bot_framework_ids or {})  # Entra object id → Bot Framework id
        self._streaming: str | None = None  # the chat whose stream this surface holds

    # --- the port -----------------------------------------------------------------------

    async def post(self, where: ConversationRef, message: Message) -> str | None:
        activity = render_message(message)
        if isinstance(message, AnswerMessage):
            return await self.post_answer(where, activity, message.request_id)
        try:
            return await self.send(where, activity)
        except Exception as exc:
            log.error(
                "teams post failed", request_id=request_id_of(message), error=type(exc).__name__
            )
            return None

    async def update(self, where: ConversationRef, message_id: str, message: Message) -> bool:
        try:
            connector = await self._connector_for(where)
            await connector.update(message_id, render_message(message))
        except Exception as exc:
            log.error(
                "teams update failed", request_id=request_id_of(message), error=type(exc).__name__
            )
            return False
        return True

    async def post_privately(self, where: ConversationRef, user_id: str, message: Message) -> bool:
        """In the person's 1:1 chat with the bot (Teams has no message only one member of a
        group chat sees)."""
        request_id = request_id_of(message)
        try:
            connector = await self._connector_for(where)
            member = self._ids.get(user_id) or await self._bot_framework_id(connector, user_id)
            chat, sent = await connector.send_to_user(member, where.tenant, render_message(message))
            await self._store.save_reference(where.tenant, chat.reference)
            if sent and request_id:
                await self._store.remember_answer(
                    where.tenant, chat.conversation_id, sent, request_id
                )
        except Exception as exc:
            log.error("private answer failed", request_id=request_id, error=type(exc).__name__)
            return False
        return True

    async def reply(self, turn: Turn) -> Reply:
        """The typing indicator at once; the answer streamed in a 1:1 chat whose stream is
        free, else sent whole at the end."""
        where = turn.where
        try:
            await self.send(where, render_typing())
        except Exception as exc:
            log.warning("teams typing indicator failed", error=type(exc).__name__)
        kind = where.extra.get("conversation_type") or kind_of(where.conversation)
        if kind == PERSONAL and where.conversation not in self._streams.open:
            self._streams.open.add(where.conversation)
            self._streaming = where.conversation
            return StreamingReply(self, where, self._streams.interval_s)
        return FinalReply(self, where)

    # --- for the replies ------------------------------------------------------------------

    async def send(self, where: ConversationRef, activity: Activity) -> str | None:
        """Send an activity into the conversation (raises when Teams refuses it)."""
        connector = await self._connector_for(where)
        return await connector.send(activity)

    async def post_answer(
        self, where: ConversationRef, activity: Activity, request_id: str
    ) -> str | None:
        """Send an answer and remember which message shows it."""
        try:
            sent = await self.send(where, activity)
        except Exception as exc:
            log.error("teams answer not sent", request_id=request_id, error=type(exc).__name__)
            return None
        if sent:
            try:
                await self._store.remember_answer(
                    where.tenant, where.conversation, sent, request_id
                )
            except Exception as exc:  # the answer stands; votes on it cannot be matched
                log.error(
                    "teams answer not remembered", request_id=request_id, error=type(exc).__name__
                )
        return sent

    def release_stream(self) -> None:
        """The chat may stream again (the answer is out, or the turn failed)."""
        if self._streaming is not None:
            self._streams.open.discard(self._streaming)
            self._streaming = None

    async def _connector_for(self, where: ConversationRef) -> Connector:
        if where.conversation == self._connector.conversation_id:
            return self._connector
        reference = await self._store.reference(where.tenant, where.conversation)
        if reference is None:
            raise Unreachable(f"no Teams conversation reference for {where.conversation}")
        return self._connector.elsewhere(reference)

    async def _bot_framework_id(self, connector: Connector, user_id: str) -> str:
        member = await connector.member(user_id)
        if not member or not member.get("id"):
            raise Unreachable("the person is not in the conversation's roster")
        return str(member["id"])


class TeamsSurfaces:
    """Surfaces for recorded Teams conversations outside any turn, with the conversation
    reference stored when the bot was last spoken to there. The transport (the Bot
    Framework SDK) is built on first use: most commands never post into Teams."""

    def __init__(self, transport: Callable[[], Transport], store: TeamsStore) -> None:
        self._make_transport = transport
        self._transport: Transport | None = None
        self._store = store
        self._streams = Streams()

    async def open(self, where: ConversationRef) -> TeamsSurface:
        reference = await self._store.reference(where.tenant, where.conversation)
        if reference is None:
            raise Unreachable(
                f"no Teams conversation reference for {where.conversation}: the bot was "
                "never spoken to there by this service"
            )
        if self._transport is None:
            self._transport = self._make_transport()
        return TeamsSurface(Connector(self._transport, reference), self._store, self._streams)
