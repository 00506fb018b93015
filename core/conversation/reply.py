"""The Reply of a surface that does not stream: a working message that follows the status
steps and is replaced by the answer."""

from __future__ import annotations

from core.conversation.messages import AnswerMessage, Progress, Working
from core.conversation.ports import Surface
from core.conversation.types import ConversationRef


class WorkingMessage:
    def __init__(self, surface: Surface, where: ConversationRef, message_id: str | None) -> None:
        self._surface = surface
        self._where = where
        self._message_id = message_id

    @classmethod
    async def post(cls, surface: Surface, where: ConversationRef) -> WorkingMessage:
        """Post the working message ("Looking into it…") at once."""
        return cls(surface, where, await surface.post(where, Working()))

    @property
    def message_id(self) -> str | None:
        return self._message_id

    async def progress(self, step: Progress) -> None:
        """Status steps replace the working message's text; text deltas are not shown."""
        if step.status and self._message_id is not None:
            await self._surface.update(self._where, self._message_id, Working(step.status))

    async def finish(self, message: AnswerMessage) -> str | None:
        """The answer in place of the working message, or as a new message when there is
        none or it cannot be replaced (a working message left alone says nothing false)."""
        if self._message_id is not None and await self._surface.update(
            self._where, self._message_id, message
        ):
            return self._message_id
        return await self._surface.post(self._where, message)
