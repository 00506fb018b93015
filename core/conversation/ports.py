"""The ports a chat platform implements (surface, identity, opening a surface outside a turn)
and the store the conversation layer records into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.answering.progress import ProgressSink
from core.answering.types import Answer, Question
from core.conversation.messages import AnswerMessage, Message, Progress
from core.conversation.types import (
    ChatUser,
    ConversationInfo,
    ConversationRef,
    PostedAnswer,
    Turn,
    Vote,
)


class Reply(Protocol):
    """One answer on its way into a conversation, from "working on it" to the checked
    answer. The conversation layer calls :meth:`progress` for each step of the answer flow,
    in order and never concurrently, then :meth:`finish` once. Failures are the reply's to
    retry and log, never raised."""

    @property
    def message_id(self) -> str | None:
        """The message the answer is expected to end in (the working message), None when
        none could be posted."""
        ...

    async def progress(self, step: Progress) -> None:
        """Show a status step, add a text delta to the draft, or (``step.restart``) drop
        the draft shown so far. A platform that cannot stream shows status steps at most."""
        ...

    async def finish(self, message: AnswerMessage) -> str | None:
        """Replace everything shown so far with the final, checked answer (which carries
        ``revised_after_check`` when it differs from the streamed draft): no draft is ever
        left standing as if it were the answer. Returns the id of the message showing it,
        None when it could not be shown."""
        ...


class Surface(Protocol):
    """What a platform must do to show a conversation's side of things, and nothing else.
    Failures are the surface's to retry and log; they come back as None / False."""

    async def post(self, where: ConversationRef, message: Message) -> str | None:
        """Post into the conversation's thread; the new message's id, None when it failed."""
        ...

    async def update(self, where: ConversationRef, message_id: str, message: Message) -> bool:
        """Replace a message this surface posted."""
        ...

    async def post_privately(self, where: ConversationRef, user_id: str, message: Message) -> bool:
        """Show a message to one person only, in (or next to) the conversation."""
        ...

    async def reply(self, turn: Turn) -> Reply:
        """Start answering ``turn``: show at once that the bot is on it. A platform that
        does not stream returns :class:`core.conversation.reply.WorkingMessage`."""
        ...


class Identity(Protocol):
    """What a platform knows about people and conversations."""

    async def email_of(self, user: ChatUser) -> str | None:
        """The email the platform holds for the user (a profile), None when it has none."""
        ...

    async def describe(self, where: ConversationRef) -> ConversationInfo | None:
        """The conversation's kind and, for a private one, its members' ids; None when the
        platform cannot say (treated as public: the safest audience)."""
        ...


@dataclass(frozen=True, slots=True)
class Chat:
    """One platform's ports for the current turn (bound to the token or turn context the
    event came with)."""

    surface: Surface
    identity: Identity


class Unreachable(RuntimeError):
    """A conversation cannot be posted into: no credentials for it, or the post failed."""


class Surfaces(Protocol):
    """Opens a surface for a recorded conversation, outside any chat turn."""

    async def open(self, where: ConversationRef) -> Surface:
        """A surface able to post into ``where``; raises Unreachable with the reason."""
        ...


class Answerer(Protocol):
    async def answer(self, question: Question, progress: ProgressSink | None = None) -> Answer:
        """The answer flow (core/answering): ``progress`` receives its steps as it works."""
        ...


class ConversationStore(Protocol):
    """Posted answers, votes and one-off claims, shared by every replica."""

    async def record(self, posted: PostedAnswer) -> None:
        """Store (or replace) the posted answer under its request id."""
        ...

    async def get(self, request_id: str) -> PostedAnswer | None: ...

    async def answered_in(self, where: ConversationRef) -> bool:
        """Whether an answer was posted in ``where``'s thread."""
        ...

    async def vote(self, request_id: str, voter: str, value: int) -> int:
        """Store a vote (one per voter and answer, the last one counts); returns the number
        of 👎 in the answer's thread, counted after the vote is stored."""
        ...

    async def votes(self, request_id: str) -> list[Vote]: ...

    async def claim(self, key: str) -> bool:
        """True the first time ``key`` is claimed, on any replica; False afterwards."""
        ...
