"""An answer shown in Slack as it is written: the conversation layer's Reply port.

The working message ("Looking into it…") is posted at once. Status steps show as the
thread's assistant status (``assistant.threads.setStatus``) when an answer takes longer
than ``status_delay_s``. The model's first words start a stream (slack_sdk's
``chat_stream`` helper: ``chat.startStream``, then ``chat.appendStream``, then
``chat.stopStream``) and the working message is deleted. The final answer ends the stream
with its blocks (citations, notices, Slack's feedback buttons, the other buttons, the
footer) when it is the text that was streamed; when the check changed it, the streamed
message is replaced whole (``chat.update``) by the checked answer, which says so.

Buffer rule, so calls per answer stay bounded whatever the answer's length: the first text
goes out at once; after it, at most one ``chat.appendStream`` per ``interval_s`` and at most
``max_appends`` of them (later text waits for ``chat.stopStream``). Per answer that is at
most 1 working message + ``MAX_STATUS_CALLS`` statuses + 1 ``chat.startStream`` + 1
``chat.delete`` of the working message (or, without a stream, 1 status clear) +
``max_appends`` + 1 ``chat.stopStream`` + 1 ``chat.update`` when the check revised the
draft: ``max_calls_per_answer()``, 18 with the defaults. (Retries of failed calls come on
top; they are the client's 429/5xx handling.)

Where Slack refuses streaming (an error from ``chat.startStream``: an old workspace, a
missing feature), the draft is shown in the working message instead, by ``chat.update`` under
the same rule; if that fails too, only the final answer is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import (
    escape_stream_text,
    render_answer,
    render_draft,
    render_stream_end,
)
from core.answering.types import NoticeCode
from core.conversation.messages import AnswerMessage, Progress
from core.conversation.types import ConversationRef, Turn
from core.tasks import cancel

if TYPE_CHECKING:
    from adapters.slack.surface import SlackSurface

log = structlog.get_logger()

MAX_STATUS_CALLS = 3  # status steps shown per answer (the flow sends 2–3)
REVISING = "\n\n_(Checking again…)_\n\n"  # a streamed draft cannot be unsaid, only followed


@dataclass(frozen=True, slots=True)
class StreamConfig:
    enabled: bool = True  # stream answers (else: the final answer only, as before)
    interval_s: float = 1.0  # at most one append (or draft update) per interval …
    max_appends: int = 10  # … and at most this many per answer
    status: bool = True  # show status steps with assistant.threads.setStatus
    status_delay_s: float = 0.5  # answers faster than this show no status at all

    def max_calls_per_answer(self) -> int:
        """Web API calls one answer may make for its reply (see the module docstring)."""
        return 1 + MAX_STATUS_CALLS + 1 + 1 + self.max_appends + 1 + 1


@dataclass(slots=True)
class Streaming:
    """Shared by every reply of a process: the settings, and the workspaces that refused
    assistant statuses (asked once, not on every answer)."""

    config: StreamConfig = field(default_factory=StreamConfig)
    no_status: set[str] = field(default_factory=set)


class SlackReply:
    """One answer in a Slack thread (the Reply port): see the module docstring."""

    def __init__(
        self,
        surface: SlackSurface,  # its post and update are paced and retried
        client: AsyncWebClient,
        turn: Turn,
        working: str | None,
        streaming: Streaming,
    ) -> None:
        self._surface = surface
        self._client = client
        self._where: ConversationRef = turn.where
        self._asker = turn.asker
        self._working = working
        self._streaming = streaming
        self._config = streaming.config
        # "stream": text goes to a stream (once started); "update": Slack refused streaming,
        # the draft goes to the working message; "broken": the stream failed midway, the
        # answer will replace it; "final": only the final answer is shown.
        self._mode = "stream" if self._config.enabled and self._where.thread else "final"
        self._stream: AsyncChatStream | None = None
        self._draft = ""  # the answer text streamed since the last restart
        self._pending = ""  # text not sent yet
        self._sent_at = 0.0
        self._text_calls = 0  # appends (or draft updates) after the first text
        self._status_wanted = ""
        self._status_now = ""
        self._status_calls = 0
        self._status_task: asyncio.Task[None] | None = None
        self._done = False

    @property
    def message_id(self) -> str | None:
        """The working message; once a stream started, the streamed message (the answer
        ends there: recorded so before it is shown, it need not be recorded again after)."""
        if self._stream is not None and self._stream.ts is not None:
            return self._stream.ts
        return self._working

    # --- progress ---------------------------------------------------------------------

    async def progress(self, step: Progress) -> None:
        if step.status:
            self._want_status(step.status)
        elif step.restart:
            self._draft = ""
            # Streamed text cannot be taken back: say a new attempt follows. A draft shown
            # in the working message is simply replaced.
            self._pending = REVISING if self._stream is not None else ""
        elif step.delta:
            self._draft += step.delta
            self._pending += escape_stream_text(step.delta)
            await self._show_text()

    async def _show_text(self) -> None:
        if self._mode == "stream" and self._stream is None:
            await self._stop_status()  # the streamed message ends the status anyway
            await self._start()
        elif self._due():
            if self._mode == "stream":
                await self._append()
            elif self._mode == "update":
                await self._update_draft()

    def _due(self) -> bool:
        return (
            self._text_calls < self._config.max_appends
            and time.monotonic() - self._sent_at >= self._config.interval_s
        )

    async def _start(self) -> None:
        """The first words at once: chat.startStream carries them."""
        team = self._asker.tenants[0] if self._asker.tenants else self._where.tenant
        try:
            stream = await self._client.chat_stream(
                channel=self._where.conversation,
                thread_ts=self._where.thread,
                recipient_user_id=self._asker.id,
                recipient_team_id=team,
                buffer_size=1,  # this module decides when to send (the buffer rule)
            )
            await stream.append(markdown_text=self._pending)
        except Exception as exc:  # refused (SlackApiError) or unreachable: show the draft
            log.info("slack streaming refused; showing the draft by updates", error=_error(exc))
            self._mode = "update"
            await self._update_draft()
            return
        self._stream = stream
        self._pending = ""
        self._sent_at = time.monotonic()
        if self._working is not None:
            await self._call("chat_delete", channel=self._where.conversation, ts=self._working)

    async def _append(self) -> None:
        if not self._pending or self._stream is None:
            return
        try:
            await self._stream.append(markdown_text=self._pending)
        except Exception as exc:  # e.g. message_not_in_streaming_state: replaced at the end
            log.warning("slack stream append failed", error=_error(exc))
            self._mode = "broken"
            return
        self._pending = ""
        self._text_calls += 1
        self._sent_at = time.monotonic()

    async def _update_draft(self) -> None:
        if self._working is None or not self._draft.strip():
            return
        payload = render_draft(self._draft)
        self._sent_at = time.monotonic()
        self._text_calls += 1
        self._pending = ""
        if not await self._call(
            "chat_update", channel=self._where.conversation, ts=self._working, **payload
        ):
            self._mode = "final"  # the final answer only

    # --- status -------------------------------------------------------------------------

    def _want_status(self, text: str) -> None:
        team = self._where.tenant
        if (
            not self._config.status
            or team in self._streaming.no_status
            or self._stream is not None
            or self._done
        ):
            return
        self._status_wanted = text
        if self._status_task is None or self._status_task.done():
            self._status_task = asyncio.create_task(self._show_status())

    async def _show_status(self) -> None:
        if not self._status_calls:
            await asyncio.sleep(self._config.status_delay_s)  # fast answers show none
        while self._status_wanted != self._status_now and self._status_calls < MAX_STATUS_CALLS:
            wanted = self._status_wanted
            self._status_calls += 1
            self._status_now = wanted  # set before the call: a cancelled call may land
            if not await self._set_status(wanted):
                return

    async def _set_status(self, text: str) -> bool:
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self._where.conversation, thread_ts=self._where.thread, status=text
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("assistant status refused; not used here again", error=error)
            self._streaming.no_status.add(self._where.tenant)
            self._status_now = ""
            return False
        except Exception as exc:
            log.warning("assistant status failed", error=type(exc).__name__)
            return False
        return True

    async def _stop_status(self) -> None:
        await cancel(self._status_task)

    # --- the final answer ---------------------------------------------------------------

    async def finish(self, message: AnswerMessage) -> str | None:
        self._done = True
        await self._stop_status()
        if self._stream is not None and self._stream.ts is not None:
            return await self._finish_stream(self._stream, self._stream.ts, message)
        shown = None
        if self._working is not None and await self._surface.update(
            self._where, self._working, message
        ):
            shown = self._working
            if self._status_now:  # an update is no new message: the status stays
                await self._set_status("")
        return shown or await self._surface.post(self._where, message)

    async def _finish_stream(
        self, stream: AsyncChatStream, ts: str, message: AnswerMessage
    ) -> str | None:
        answer = message.answer
        revised = any(n.code == NoticeCode.REVISED_AFTER_CHECK for n in answer.notices)
        if self._mode == "stream" and not revised and self._draft.strip() == answer.text.strip():
            blocks = render_stream_end(answer, private_button=message.offer_private)
            with contextlib.suppress(Exception):
                await stream.stop(markdown_text=self._pending or None, blocks=blocks)
                return ts
            log.warning("slack stream stop failed; replacing the message")
        else:
            with contextlib.suppress(Exception):
                await stream.stop()  # ends the stream; its draft is replaced next
        payload = render_answer(answer, private_button=message.offer_private, streamed=True)
        payload.pop("unfurl_links", None)
        payload.pop("unfurl_media", None)
        if await self._surface.send_update(self._where, ts, payload, answer.request_id):
            return ts
        # The draft must not stand as if it were the answer: post the answer, drop the draft.
        posted = await self._surface.post(self._where, message)
        await self._call("chat_delete", channel=self._where.conversation, ts=ts)
        return posted

    async def _call(self, method: str, **arguments: Any) -> bool:
        """One Web API call whose failure is logged, not raised."""
        try:
            await getattr(self._client, method)(**arguments)
        except Exception as exc:
            log.warning("slack call failed", method=method, error=_error(exc))
            return False
        return True


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return type(exc).__name__
