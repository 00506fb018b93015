"""Progress while an answer is prepared, and Teams' streaming protocol for 1:1 chats.

The progress source is the seam issue 13's core contract plugs into: an async iterator of
status steps, model text deltas and, last, the final checked `Answer`. Until the core
reports progress, `answer_progress` yields one status step and the final answer.

Teams' protocol (1:1 chats only, one stream per chat at a time): `typing` activities
carrying a `streaminfo` entity — `informative` updates (a status line), then `streaming`
updates whose text is everything streamed so far — numbered by `streamSequence` from 1; the
id Teams gives the first one is the stream id every later activity names; a `message` with
`streamType: final` ends it and is what stays in the chat (citations, label, feedback).
Teams allows about one update a second, so deltas are buffered between updates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.teams.render import MAX_INFORMATIVE_CHARS, render_answer
from core.answering.types import Answer, Question

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Status:
    text: str  # "Searching the documents…"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str  # the next piece of the model's draft


@dataclass(frozen=True, slots=True)
class Final:
    answer: Answer  # the checked answer: always the last item


Progress = Status | TextDelta | Final
ProgressSource = Callable[[Question], AsyncIterator[Progress]]


def answer_progress(answers: Any) -> ProgressSource:
    """The default progress source: one status step, then the answer (no deltas until the
    core streams)."""

    async def source(question: Question) -> AsyncIterator[Progress]:
        yield Status("Searching the documents you may read…")
        yield Final(await answers.answer(question))

    return source


async def final_answer(progress: AsyncIterator[Progress]) -> Answer:
    """Where nothing is streamed (group chats, channels): only the final answer counts."""
    async for item in progress:
        if isinstance(item, Final):
            return item.answer
    raise RuntimeError("the progress source ended without a final answer")


Send = Callable[[dict[str, Any]], Awaitable[str | None]]


class TeamsStream:
    """Sends one answer's progress with Teams' streaming protocol. If Teams refuses a
    streaming update (the user pressed Stop, streaming is off for the chat), the rest is
    not streamed and the final answer goes out as an ordinary message."""

    def __init__(self, send: Send, interval_s: float = 1.0) -> None:
        self._send = send
        self._interval_s = interval_s
        self._stream_id: str | None = None
        self._sequence = 0
        self._text = ""
        self._sent_text = ""
        self._last_sent = float("-inf")
        self._broken = False

    async def run(self, progress: AsyncIterator[Progress]) -> tuple[Answer, str | None]:
        """Stream until the final answer; returns it and the id of the final message."""
        async for item in progress:
            if isinstance(item, Final):
                return item.answer, await self._final(item.answer)
            if isinstance(item, Status) and not self._text:
                # Informative updates are only allowed before the text starts.
                await self._update("informative", item.text[:MAX_INFORMATIVE_CHARS])
            elif isinstance(item, TextDelta) and item.text:
                self._text += item.text
                if time.monotonic() - self._last_sent >= self._interval_s:
                    await self._update("streaming", self._text)
        raise RuntimeError("the progress source ended without a final answer")

    async def _update(self, stream_type: str, text: str) -> None:
        if self._broken or (stream_type == "streaming" and text == self._sent_text):
            return
        wait = self._last_sent + self._interval_s - time.monotonic()
        if wait > 0 and stream_type == "informative":
            await asyncio.sleep(wait)
        self._sequence += 1
        info: dict[str, Any] = {
            "type": "streaminfo",
            "streamType": stream_type,
            "streamSequence": self._sequence,
        }
        if self._stream_id:
            info["streamId"] = self._stream_id
        try:
            sent = await self._send({"type": "typing", "text": text, "entities": [info]})
        except Exception as exc:  # refused: finish without streaming
            log.warning("teams stream update refused", error=type(exc).__name__)
            self._broken = True
            return
        self._last_sent = time.monotonic()
        if stream_type == "streaming":
            self._sent_text = text
        if self._stream_id is None:
            self._stream_id = sent

    async def _final(self, answer: Answer) -> str | None:
        activity = render_answer(answer)
        if self._stream_id and not self._broken:
            activity["entities"] = [
                {"type": "streaminfo", "streamId": self._stream_id, "streamType": "final"},
                *activity["entities"],
            ]
        return await self._send(activity)
