"""An answer shown in Teams as it is written: the conversation layer's Reply port.

Teams streams bot messages in 1:1 chats only, one stream per chat at a time. The protocol:
`typing` activities carrying a `streaminfo` entity — `informative` updates (a status line,
at most 1000 characters, only before the text starts), then `streaming` updates whose text
is everything streamed so far and must extend the previous one — numbered by
`streamSequence` from 1; the id Teams gives the first one is the stream id every later
activity names; a `message` with `streamType: final` ends it and is what stays in the chat
(the checked answer, its citations, the AI label, the feedback loop, the buttons). Teams
allows about one update a second, so text is buffered between updates.

From the core's progress (core/answering/progress.py): status steps → informative updates;
text deltas → streaming updates; a restart → the draft is void, but streamed text cannot be
taken back (Teams refuses text that does not extend what it showed), so "(Checking again…)"
follows it and the new draft after that; then the final message, which replaces the whole
draft with the checked answer (marked `revised_after_check` when it differs).

Group chats and channels, and a second question while a chat streams, get the final
message only (:class:`FinalReply`). If Teams refuses a streaming update (the user pressed
Stop, a stream is already open in the chat), the rest is not streamed and the final answer
goes out as an ordinary message.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog

from adapters.teams.render import MAX_INFORMATIVE_CHARS, escape, render_answer
from core.conversation.messages import AnswerMessage, Progress
from core.conversation.types import ConversationRef

if TYPE_CHECKING:
    from adapters.teams.surface import TeamsSurface

log = structlog.get_logger()
REVISING = "\n\n_(Checking again…)_\n\n"


class FinalReply:
    """No streaming: the typing indicator (sent when the reply started), then the answer."""

    def __init__(self, surface: TeamsSurface, where: ConversationRef) -> None:
        self._surface = surface
        self._where = where

    @property
    def message_id(self) -> str | None:
        return None  # no working message: the answer is a message of its own

    async def progress(self, step: Progress) -> None:
        return None

    async def finish(self, message: AnswerMessage) -> str | None:
        return await self._surface.post(self._where, message)


class StreamingReply:
    """One answer streamed into a 1:1 chat (see the module docstring). Updates go out at most
    one per ``interval_s``: what arrives sooner waits for a timer (text first; a status
    only while no text has started), so the latest text is shown as soon as Teams allows,
    whether or not more follows."""

    def __init__(
        self, surface: TeamsSurface, where: ConversationRef, interval_s: float = 1.0
    ) -> None:
        self._surface = surface
        self._where = where
        self._interval_s = interval_s
        self._stream_id: str | None = None
        self._sequence = 0
        self._status = ""  # the latest status step not shown yet
        self._text = ""  # everything to be streamed (escaped)
        self._sent_text = ""
        self._last_sent = float("-inf")
        self._broken = False
        self._lock = asyncio.Lock()  # one update at a time, in order
        self._timer: asyncio.Task[None] | None = None

    @property
    def message_id(self) -> str | None:
        return None

    async def progress(self, step: Progress) -> None:
        if step.status:
            if not self._text:  # informative updates only before the text starts
                self._status = step.status[:MAX_INFORMATIVE_CHARS]
        elif step.restart:
            if self._text:
                self._text += REVISING
        elif step.delta:
            self._text += escape(step.delta)
        if self._broken:
            return
        wait = self._last_sent + self._interval_s - time.monotonic()
        if wait <= 0:
            await self._flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_after(wait))

    async def _flush_after(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timer = None  # from here on the update is not cancelled: finish waits for it
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            if self._broken:
                return
            if self._text:
                if self._text != self._sent_text:
                    await self._update("streaming", self._text)
            elif self._status:
                await self._update("informative", self._status)
            self._status = ""

    async def _update(self, stream_type: str, text: str) -> None:
        self._sequence += 1
        info: dict[str, Any] = {
            "type": "streaminfo",
            "streamType": stream_type,
            "streamSequence": self._sequence,
        }
        if self._stream_id:
            info["streamId"] = self._stream_id
        activity = {"type": "typing", "text": text, "entities": [info]}
        try:
            sent = await self._surface.send(self._where, activity)
        except Exception as exc:  # refused: finish without streaming
            log.warning("teams stream update refused", error=type(exc).__name__)
            self._broken = True
            return
        self._last_sent = time.monotonic()
        if stream_type == "streaming":
            self._sent_text = text
        if self._stream_id is None:
            self._stream_id = sent

    async def finish(self, message: AnswerMessage) -> str | None:
        if self._timer is not None:  # an update still waiting: the final message follows now
            self._timer.cancel()
            self._timer = None
        async with self._lock:  # an update on its way lands first
            activity = render_answer(message.answer, private_button=message.offer_private)
            if self._stream_id and not self._broken:
                activity["entities"] = [
                    {"type": "streaminfo", "streamId": self._stream_id, "streamType": "final"},
                    *activity["entities"],
                ]
            try:
                return await self._surface.post_answer(self._where, activity, message.request_id)
            finally:
                self._surface.release_stream()
