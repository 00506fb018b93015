"""The Teams side of a conversation: an authenticated activity becomes a core Question, the
core's Answer becomes a Teams reply (streamed in 1:1 chats). Everything Teams-specific stays
here; what is not Teams-specific (recording answers, feedback, handoff, the private answer)
is handed to one injected callback, where issue 12's conversation layer takes over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from adapters.teams.activities import (
    AnswerPosted,
    IncomingMessage,
    TeamsEvent,
    bot_added_in_personal_scope,
    conversation_reference,
    parse_card_submit,
    parse_feedback,
    parse_message,
)
from adapters.teams.identity import TeamsIdentity
from adapters.teams.ports import Activity, InvokeReply, Transport, Turn
from adapters.teams.render import render_answer, render_typing, render_welcome
from adapters.teams.store import TeamsStore
from adapters.teams.streaming import ProgressSource, TeamsStream, final_answer
from core.answering.types import Asker, Question

log = structlog.get_logger()
EventSink = Callable[[TeamsEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TeamsConfig:
    reply_window_s: float = 12.0  # Teams waits ~15 s for a turn; past this, go proactive
    stream_interval_s: float = 1.0  # Teams allows about one streaming update a second
    sample_questions: tuple[str, ...] = ()


async def log_event(event: TeamsEvent) -> None:
    """The default event sink until issue 12's conversation layer handles these (votes on
    the trace, tickets from "Talk to a human"): they are logged, nothing more."""
    log.info("teams event not handled yet", kind=type(event).__name__)


async def question_of(identity: TeamsIdentity, turn: Turn, message: IncomingMessage) -> Question:
    """Who asks, who reads, what: the core Question for a Teams message. The part issue 12's
    conversation layer replaces (with the identity port this class implements)."""
    email = await identity.email_of(turn, message.tenant_id, message.user)
    audience = await identity.members_of(
        turn,
        message.tenant_id,
        message.conversation_id,
        message.conversation_type,
        message.team_id,
    )
    return Question(
        text=message.text,
        asker=Asker(
            email=email,
            platform="teams",
            platform_user_id=message.user.aad_object_id or message.user.id,
            tenant_id=message.tenant_id,
        ),
        audience=audience,
        conversation_id=f"teams:{message.tenant_id}:{message.conversation_id}",
        platform="teams",
    )


class _Delivery:
    """Sends for one answer: into the turn while Teams waits for it, then, once the reply
    window has passed, proactively with the conversation reference stored in the database."""

    def __init__(
        self, turn: Turn, transport: Transport, store: TeamsStore, reference_key: str
    ) -> None:
        self._turn = turn
        self._transport = transport
        self._store = store
        self._key = reference_key
        self.proactive = False

    async def send(self, activity: Activity) -> str | None:
        if not self.proactive:
            return await self._turn.send(activity)
        reference = await self._store.reference(self._key)
        if reference is None:
            raise RuntimeError("no stored conversation reference")
        sent: list[str | None] = []

        async def post(turn: Turn) -> None:
            sent.append(await turn.send(activity))

        await self._transport.continue_conversation(reference, post)
        return sent[0] if sent else None


class TeamsBot:
    def __init__(
        self,
        transport: Transport,
        store: TeamsStore,
        identity: TeamsIdentity,
        progress: ProgressSource,
        config: TeamsConfig | None = None,
        on_event: EventSink = log_event,
    ) -> None:
        self._transport = transport
        self._store = store
        self._identity = identity
        self._progress = progress
        self._on_event = on_event
        self.config = config or TeamsConfig()
        self._streaming: set[str] = set()  # chats with a stream open (Teams allows one)
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_turn(self, turn: Turn) -> InvokeReply | None:
        activity = turn.activity
        feedback = parse_feedback(activity)
        if feedback is not None:
            await self._emit(feedback)
            return InvokeReply(200, {})
        if activity.get("type") == "invoke":
            return InvokeReply(200, {})  # other invokes: acknowledged, nothing to do
        human = parse_card_submit(activity)
        if human is not None:
            await self._emit(human)
            return None
        if bot_added_in_personal_scope(activity):
            await turn.send(render_welcome(list(self.config.sample_questions)))
            return None
        message = parse_message(activity)
        if message is not None:
            await self._answer(turn, message)
        return None  # other activity types are ignored

    async def _answer(self, turn: Turn, message: IncomingMessage) -> None:
        await turn.send(render_typing())
        key = await self._store.save_reference(
            message.tenant_id, conversation_reference(turn.activity)
        )
        delivery = _Delivery(turn, self._transport, self._store, key)
        task = asyncio.create_task(self._deliver(delivery, turn, message, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=self.config.reply_window_s)
        if not done:
            # End the turn now (Teams stops waiting at ~15 s); the rest goes out proactively.
            delivery.proactive = True
            log.info("teams answer continues proactively", activity_id=message.activity_id)

    async def _deliver(
        self, delivery: _Delivery, turn: Turn, message: IncomingMessage, key: str
    ) -> None:
        try:
            question = await question_of(self._identity, turn, message)
            progress = self._progress(question)
            chat = message.conversation_id
            if message.personal and chat not in self._streaming:
                self._streaming.add(chat)
                try:
                    stream = TeamsStream(delivery.send, self.config.stream_interval_s)
                    answer, message_id = await stream.run(progress)
                finally:
                    self._streaming.discard(chat)
            else:
                answer = await final_answer(progress)
                message_id = await delivery.send(render_answer(answer))
            await self._emit(
                AnswerPosted(answer.request_id, chat, message.tenant_id, message_id, key)
            )
        except Exception:
            log.exception("teams answer failed", activity_id=message.activity_id)

    async def _emit(self, event: TeamsEvent) -> None:
        try:
            await self._on_event(event)
        except Exception:
            log.exception("teams event handler failed", kind=type(event).__name__)

    async def drain(self) -> None:
        """Wait for answers still being delivered (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
