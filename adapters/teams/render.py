"""Translate the core's Answer into Teams activities (Bot Framework JSON as plain dicts).

A reply carries the answer as Markdown text with `[n]` markers, Teams' citation entity (a
schema.org `Message` whose `citation[n].position` matches each `[n]` in the text), the
"AI generated" label when a model wrote the text, Teams' feedback loop, and an Adaptive Card
with "Talk to a human" (and, when the asker could have a fuller answer, "Send me the full
answer privately") when the reader may want one. The text alone always says everything
(notices, sources, request id): it is the fallback for clients that render neither cards
nor citations. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.teams.activities import ACTIONS
from core.answering.types import Answer, Citation, Mode
from core.conversation.messages import Action, AnswerMessage, Message, TextMessage, Working

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
MAX_ABSTRACT_CHARS = 160  # Teams shows at most 160 characters of a citation's abstract
MAX_NAME_CHARS = 80
MAX_INFORMATIVE_CHARS = 1000  # Teams refuses longer informative stream updates

_MODE_PREFIX = {Mode.CLARIFY: "🤔 ", Mode.HANDOFF: "🙋 ", Mode.REFUSED: "🚫 "}
_BUTTON_MODES = (Mode.ANSWER, Mode.DEGRADED, Mode.CLARIFY)
# "[1, 3]" as the core writes a group; Teams links only single "[n]" markers.
_GROUP = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})+)\]")


def split_markers(text: str) -> str:
    """`[1, 3]` → `[1][3]`: Teams turns only single markers into citation links."""
    return _GROUP.sub(lambda m: "".join(f"[{n.strip()}]" for n in m.group(1).split(",")), text)


def escape(text: str) -> str:
    # Model output must not forge mentions (<at>…</at>) or markup in the message.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def answer_text(answer: Answer) -> str:
    """The whole reply as Markdown: answer, ⚠️ notices, sources, request id."""
    body = split_markers(escape(answer.text.strip())) or "_(no answer text)_"
    parts = [_MODE_PREFIX.get(answer.mode, "") + body]
    if answer.ticket and answer.ticket.get("id"):
        parts.append(f"🙋 Ticket {escape(str(answer.ticket['id']))} is open for a colleague.")
    if answer.mode is Mode.DEGRADED:
        parts.append("⚠️ **Degraded mode**: this answer was produced with reduced capability.")
    parts.extend(f"⚠️ {escape(notice.message)}" for notice in answer.notices)
    if answer.citations:
        sources = " · ".join(f"{c.n}. {escape(_source_name(c))}" for c in answer.citations)
        parts.append(f"*Sources: {sources}*")
    parts.append(f"*Request {answer.request_id}*")
    return "\n\n".join(parts)


def _source_name(citation: Citation) -> str:
    page = f" (p. {citation.page})" if citation.page else ""
    return f"{citation.title or citation.source}{page}"


def citation_entity(answer: Answer, *, ai_generated: bool) -> dict[str, Any]:
    """Teams' citation entity: one `Claim` per `[n]`, position n."""
    entity: dict[str, Any] = {
        "type": "https://schema.org/Message",
        "@type": "Message",
        "@context": "https://schema.org",
        "@id": "",
        "citation": [_claim(c) for c in answer.citations],
    }
    if ai_generated:
        entity["additionalType"] = ["AIGeneratedContent"]
    return entity


def _claim(citation: Citation) -> dict[str, Any]:
    appearance: dict[str, Any] = {
        "@type": "DigitalDocument",
        "name": _cut(citation.title or citation.source, MAX_NAME_CHARS),
        "abstract": _cut(_abstract(citation), MAX_ABSTRACT_CHARS),
    }
    if citation.url and re.match(r"(?i)^https?://\S+$", citation.url):
        appearance["url"] = citation.url
    if citation.page:
        appearance["keywords"] = [f"p. {citation.page}"]
    return {"@type": "Claim", "position": citation.n, "appearance": appearance}


def _abstract(citation: Citation) -> str:
    page = f", page {citation.page}" if citation.page else ""
    return f"{citation.title} — {citation.source}{page}"


_BUTTON_TITLES = {
    Action.HUMAN: "Talk to a human",
    Action.PRIVATE: "Send me the full answer privately",
}


def action_card(request_id: str, actions: list[Action], prompt: str) -> dict[str, Any]:
    """Adaptive Card 1.5 with buttons (Action.Submit, which the bot receives as a message
    whose `value` names the action and the request)."""
    return {
        "contentType": ADAPTIVE_CARD,
        "content": {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.5",
            "fallbackText": "Reply “talk to a human” to reach a person.",
            "body": [{"type": "TextBlock", "text": prompt, "isSubtle": True, "wrap": True}],
            "actions": [
                {
                    "type": "Action.Submit",
                    "title": _BUTTON_TITLES[action],
                    "data": {"action": ACTIONS[action], "request_id": request_id},
                }
                for action in actions
            ],
        },
    }


def render_answer(answer: Answer, *, private_button: bool = False) -> dict[str, Any]:
    """The answer as one Teams message activity."""
    activity: dict[str, Any] = {
        "type": "message",
        "textFormat": "markdown",
        "text": answer_text(answer),
        # The label only when a model wrote the text: quoted passages are not generated.
        "entities": [citation_entity(answer, ai_generated=answer.model is not None)],
        "channelData": {"feedbackLoopEnabled": True},
    }
    if answer.mode in _BUTTON_MODES:
        actions = [Action.HUMAN, *([Action.PRIVATE] if private_button else [])]
        activity["attachments"] = [action_card(answer.request_id, actions, "Not what you needed?")]
    return activity


def render_text(message: TextMessage) -> dict[str, Any]:
    """A short message about a request (markdown), with its request id; the offer of a
    person carries the "Talk to a human" button."""
    text = escape(message.text)
    if message.request_id:
        text += f"\n\n*Request {message.request_id}*"
    activity: dict[str, Any] = {"type": "message", "textFormat": "markdown", "text": text}
    if message.offer_human and message.request_id:
        activity["attachments"] = [
            action_card(message.request_id, [Action.HUMAN], "A person can take over.")
        ]
    return activity


def render_message(message: Message) -> dict[str, Any]:
    """A conversation-layer message as a Teams activity."""
    if isinstance(message, Working):
        return {"type": "message", "textFormat": "plain", "text": message.text}
    if isinstance(message, AnswerMessage):
        return render_answer(message.answer, private_button=message.offer_private)
    return render_text(message)


def render_typing() -> dict[str, Any]:
    return {"type": "typing"}


def render_welcome(samples: list[str]) -> dict[str, Any]:
    lines = [
        "👋 Hi, I'm Answerdesk. Ask me about company policies, IT and benefits: I answer "
        "from our own documents, only those you may read, and cite every source.",
    ]
    if samples:
        lines.append("Try one of these:")
        lines.extend(f"- {escape(sample)}" for sample in samples)
    return {"type": "message", "textFormat": "markdown", "text": "\n\n".join(lines)}
