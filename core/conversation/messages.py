"""What the conversation layer asks a surface to show; each platform renders it natively."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The answer flow's progress steps, which a Reply shows (re-exported for surfaces).
from core.answering.progress import Progress as Progress
from core.answering.types import Answer, NoticeCode

WORKING_TEXT = "Looking into it…"
OFFER_HUMAN_TEXT = "This doesn't seem to be helping. Would you like a person to take over?"


class Action(StrEnum):
    """The buttons on a posted answer, whatever the platform calls them."""

    HELPFUL = "helpful"
    NOT_HELPFUL = "not_helpful"
    HUMAN = "human"  # talk to a human
    PRIVATE = "private"  # send me the full answer privately


@dataclass(frozen=True, slots=True)
class Working:
    """A short "working on it" message, replaced later by the answer."""

    text: str = WORKING_TEXT


@dataclass(frozen=True, slots=True)
class AnswerMessage:
    answer: Answer
    offer_private: bool  # show "send me the full answer privately"

    @classmethod
    def shared(cls, answer: Answer) -> AnswerMessage:
        """An answer for the conversation: the private answer is offered when the asker
        could have had a fuller one."""
        offer = any(n.code == NoticeCode.PRIVATE_ANSWER_AVAILABLE for n in answer.notices)
        return cls(answer, offer_private=offer)

    @classmethod
    def private(cls, answer: Answer) -> AnswerMessage:
        return cls(answer, offer_private=False)

    @property
    def request_id(self) -> str:
        return self.answer.request_id


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A short message about a request (markdown): a ticket notice, an operator's or an
    agent's reply, or the offer of a person (with its "talk to a human" button)."""

    text: str
    request_id: str | None = None
    offer_human: bool = False


Message = Working | AnswerMessage | TextMessage


def request_id_of(message: Message) -> str | None:
    return None if isinstance(message, Working) else message.request_id
