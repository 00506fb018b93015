"""Conversation memory (small): the last turns of a thread, for the gate and for
rewriting follow-ups such as "and for Plus?" into a question retrieval can use."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Turn:
    question: str
    search_text: str
    mode: str
    request_id: str | None = None
    # The answer as given (text, citations, notices): a ticket's transcript shows it.
    answer: dict[str, Any] | None = None


class ConversationMemory(Protocol):
    async def recent(self, conversation_id: str, limit: int, max_age_s: float) -> list[Turn]:
        """Newest last."""
        ...

    async def add(self, conversation_id: str, turn: Turn) -> None: ...


_FOLLOW_UP_START = re.compile(
    r"^\s*(?:and|but|also|or|what about|how about|same for|and what about|and for|for)\b",
    re.IGNORECASE,
)
_PRONOUN = re.compile(r"\b(?:it|that|this|those|these|them|they|there)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")


def is_follow_up(question: str) -> bool:
    words = _WORD.findall(question)
    if _FOLLOW_UP_START.search(question):
        return True
    return len(words) <= 6 and bool(_PRONOUN.search(question))


def rewrite_follow_up(question: str, history: Sequence[Turn]) -> str | None:
    """The question with the thread's topic added, or None when it stands on its own."""
    if not history or not is_follow_up(question):
        return None
    topic = history[-1].search_text.strip()
    return f"{topic} {question.strip()}"
