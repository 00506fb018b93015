"""An answer as the chat shows it: the Slack adapter's own message (Block Kit) drawn as HTML,
so "Try it" shows exactly what the adapter would post: sections, citations, notices,
buttons and the request footer."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from adapters.slack.render import render_answer
from core.answering.types import Answer

_LINK = re.compile(r"<((?:https?://|mailto:)[^|>\s]+)(?:\|([^>]*))?>")
_FENCE = re.compile(r"```\n?(.*?)\n?```", re.S)
_FORMATS = (
    (re.compile(r"`([^`\n]+)`"), "code"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "del"),
)


def answer_html(answer: Answer) -> Markup:
    message = render_answer(answer)
    parts = ['<div class="chat-message"><div class="chat-author">Answerdesk</div>']
    for block in message["blocks"]:
        parts.append(_block(block))
    parts.append("</div>")
    return Markup("".join(parts))


def _block(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "section":
        return f'<div class="chat-section">{mrkdwn_html(block["text"]["text"])}</div>'
    if kind == "context":
        items = "".join(
            f'<span class="chat-context-item">{mrkdwn_html(e.get("text", ""))}</span>'
            for e in block.get("elements", [])
        )
        return f'<div class="chat-context">{items}</div>'
    if kind == "actions":
        buttons = "".join(
            f'<button type="button" class="chat-button" disabled>'
            f"{escape(e['text']['text'])}</button>"
            for e in block.get("elements", [])
        )
        return f'<div class="chat-actions">{buttons}</div>'
    return ""


def mrkdwn_html(text: str) -> Markup:
    """Slack mrkdwn (escaped as Slack wants: &amp; &lt; &gt;) to safe HTML."""
    out: list[str] = []
    pos = 0
    for match in _FENCE.finditer(text):
        out.append(_inline(text[pos : match.start()]))
        out.append(f"<pre>{escape(_unescape(match.group(1)))}</pre>")
        pos = match.end()
    out.append(_inline(text[pos:]))
    return Markup("".join(out))


def _inline(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _LINK.finditer(text):
        out.append(_format(text[pos : match.start()]))
        url, label = match.group(1), match.group(2) or match.group(1)
        out.append(
            f'<a href="{escape(_unescape(url))}" rel="noopener noreferrer">{_format(label)}</a>'
        )
        pos = match.end()
    out.append(_format(text[pos:]))
    return "".join(out)


def _format(text: str) -> str:
    html = str(escape(_unescape(text)))
    for pattern, tag in _FORMATS:
        html = pattern.sub(lambda m, t=tag: f"<{t}>{m.group(1)}</{t}>", html)
    return html.replace("\n", "<br>")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
