"""What a ticket says, whichever system receives it: built once, when the handoff is written
to the outbox, so a delivery after a restart sends exactly what the user asked for.

Redaction: every text field (question, transcript, answer, citations, notices, trigger)
goes through the stricter of `policy.pii_redaction` and `tracing.redaction` (PII replaced;
`all` replaces message text with its length, and agents follow the link to the thread).
The asker's email and platform identity are kept: they say whom the ticket is for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from core.answering.memory import ConversationMemory, Turn
from core.answering.redaction import redact_for_trace
from core.conversation.types import ConversationRef
from core.handoff.types import utcnow
from core.tickets import TicketRequest

log = structlog.get_logger()
SUMMARY_CHARS = 120
ANSWER_CHARS = 4000  # of each answer in the ticket
ThreadLink = Callable[[ConversationRef], "str | None"]


@dataclass(frozen=True, slots=True)
class ContentConfig:
    pii_redaction: bool = True  # policy.pii_redaction
    redaction: str = "pii"  # tracing.redaction: none | pii | all
    memory_turns: int = 6
    memory_max_age_s: float = 3600.0
    url_base: str | None = None  # the admin pages: <url_base>/traces/<request id>

    @property
    def mode(self) -> str:
        if self.redaction == "all":
            return "all"
        return "pii" if self.pii_redaction or self.redaction == "pii" else "none"


class ContentBuilder:
    def __init__(
        self,
        memory: ConversationMemory | None,
        config: ContentConfig,
        links: Mapping[str, ThreadLink] | None = None,
    ) -> None:
        self._memory = memory
        self.config = config
        self._links = dict(links or {})  # platform → a link to a thread

    def redact(self, text: str) -> str:
        return redact_for_trace(text, self.config.mode)

    def thread_link(self, where: ConversationRef | None) -> str | None:
        link = self._links.get(where.platform) if where else None
        return link(where) if link and where else None

    async def build(self, request: TicketRequest) -> dict[str, Any]:
        turns = await self._transcript(request.conversation_id)
        given = next((t for t in reversed(turns) if t.request_id == request.request_id), None)
        given = given or next((t for t in reversed(turns) if t.answer), None)
        where = request.where
        question = self.redact(request.question)
        one_line = " ".join(question.split())
        if len(one_line) > SUMMARY_CHARS:
            one_line = one_line[: SUMMARY_CHARS - 1].rstrip() + "…"
        base = self.config.url_base.rstrip("/") if self.config.url_base else None
        return {
            "version": 1,
            "request_id": request.request_id,
            "trigger": self.redact(request.reason),
            "summary": one_line or "(no question text)",
            "question": question,
            "answer": self._answer(given) if given and given.answer else None,
            "transcript": [
                {
                    "request_id": t.request_id,
                    "question": self.redact(t.question),
                    "answer": self.redact((t.answer or {}).get("text", ""))[:ANSWER_CHARS],
                    "mode": t.mode,
                }
                for t in turns
            ],
            "asker": {
                "email": request.asker,
                "name": _name(request.asker),
                "platform": where.platform if where else "cli",
                "user_id": request.asker_platform_id,
                "tenant": where.tenant if where else None,
            },
            "conversation": {
                "id": request.conversation_id,
                "platform": where.platform if where else None,
                "link": self.thread_link(where),
            },
            "trace_url": f"{base}/traces/{request.request_id}" if base else None,
            "created_at": utcnow().isoformat(),
        }

    async def _transcript(self, conversation_id: str | None) -> list[Turn]:
        if self._memory is None or not conversation_id or self.config.memory_turns <= 0:
            return []
        try:
            return await self._memory.recent(
                conversation_id, self.config.memory_turns, self.config.memory_max_age_s
            )
        except Exception as exc:  # the ticket goes out without its transcript
            log.warning("ticket transcript unavailable", error=type(exc).__name__)
            return []

    def _answer(self, turn: Turn) -> dict[str, Any]:
        answer = turn.answer or {}
        return {
            "request_id": turn.request_id,
            "text": self.redact(answer.get("text", ""))[:ANSWER_CHARS],
            "mode": answer.get("mode", turn.mode),
            "citations": [
                {
                    "n": c.get("n"),
                    "title": self.redact(str(c.get("title", ""))),
                    "source": self.redact(str(c.get("source", ""))),
                    "page": c.get("page"),
                    "url": c.get("url"),
                }
                for c in answer.get("citations", [])
            ],
            "notices": [
                {"code": n.get("code"), "message": self.redact(str(n.get("message", "")))}
                for n in answer.get("notices", [])
            ],
        }


def _name(email: str | None) -> str:
    """A readable name for ticket systems that want one (Zendesk's requester)."""
    if not email:
        return "Answerdesk user"
    local = email.split("@", 1)[0]
    return " ".join(part.capitalize() for part in local.replace("_", ".").split(".") if part)
