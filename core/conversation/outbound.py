"""Posting into a recorded conversation from outside a chat turn: an operator's `say`, an
agent's reply to a ticket, on whichever platform the request came from."""

from __future__ import annotations

from collections.abc import Mapping

from core.conversation.messages import Message, TextMessage, request_id_of
from core.conversation.ports import ConversationStore, Surface, Surfaces, Unreachable
from core.conversation.types import ConversationRef, PostedAnswer


class UnknownRequest(LookupError):
    """No answer was posted under this request id."""


class PlatformNotConfigured(Unreachable):
    """This process has no credentials for the platform."""


class UnconfiguredPlatform:
    """The Surfaces of a platform this process cannot post to, saying why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def open(self, where: ConversationRef) -> Surface:
        raise PlatformNotConfigured(self.reason)


class Outbound:
    def __init__(self, store: ConversationStore, surfaces: Mapping[str, Surfaces]) -> None:
        self._store = store
        self._surfaces = surfaces  # platform → how to open a surface there

    async def post_to(self, where: ConversationRef, message: Message) -> str:
        """Post into the referenced conversation's thread; the posted message's id. Raises
        Unreachable when the platform is not configured here or the post failed."""
        surfaces = self._surfaces.get(where.platform)
        if surfaces is None:
            raise PlatformNotConfigured(f"{where.platform} is not configured in this process")
        surface = await surfaces.open(where)
        message_id = await surface.post(where, message)
        if message_id is None:
            raise Unreachable(
                f"{where.platform} did not accept the message for request "
                f"{request_id_of(message) or '-'} (see the log)"
            )
        return message_id

    async def say(self, request_id: str, text: str) -> tuple[PostedAnswer, str]:
        """Post ``text`` into the thread the request came from: (its record, message id)."""
        posted = await self._store.get(request_id)
        if posted is None:
            raise UnknownRequest(request_id)
        return posted, await self.post_to(posted.where, TextMessage(text, request_id))
