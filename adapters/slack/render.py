"""Translate the core's Answer into Slack message payloads (Block Kit JSON as plain dicts).

Slack limits honoured here: at most 50 blocks per message, section text 1..3000 chars,
context blocks at most 10 elements of 1..2000 chars each, the fallback `text` at most 3000.
All text that reaches Slack is escaped (&, <, >) so model output cannot inject mentions such
as <!channel> or fake links; the only links are the ones this module builds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from core.answering.types import Answer, Citation, Mode, Notice, NoticeCode
from core.conversation.messages import Action, AnswerMessage, Message, Working

ACTION_FEEDBACK_UP = "answerdesk_feedback_up"
ACTION_FEEDBACK_DOWN = "answerdesk_feedback_down"
ACTION_HUMAN = "answerdesk_talk_to_human"
ACTION_PRIVATE = "answerdesk_send_private"
# Slack's feedback_buttons element (streamed answers): one action id, the vote in the value
# ("helpful:<request id>" / "not_helpful:<request id>").
ACTION_FEEDBACK = "answerdesk_feedback"
ACTIONS = {
    ACTION_FEEDBACK_UP: Action.HELPFUL,
    ACTION_FEEDBACK_DOWN: Action.NOT_HELPFUL,
    ACTION_HUMAN: Action.HUMAN,
    ACTION_PRIVATE: Action.PRIVATE,
}

# block_id of each block kind; kinds that may repeat get a "_<index>" suffix.
BLOCK_PLACEHOLDER = "answerdesk_placeholder"
BLOCK_TEXT = "answerdesk_text"  # answerdesk_text_0, _1, ...
BLOCK_TICKET = "answerdesk_ticket"
BLOCK_CITATIONS = "answerdesk_citations"  # answerdesk_citations_0, ...
BLOCK_NOTICES = "answerdesk_notices"  # answerdesk_notices_0, ...
BLOCK_ACTIONS = "answerdesk_actions"
BLOCK_FEEDBACK = "answerdesk_feedback"  # context_actions with feedback_buttons
BLOCK_FOOTER = "answerdesk_footer"
BLOCK_NOTICE_ONLY = "answerdesk_notice"
BLOCK_OFFER_HUMAN = "answerdesk_offer_human"

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_CONTEXT_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_CHARS = 3000
MAX_NOTICE_BLOCKS = 2
ELLIPSIS = "…"

_FENCE_RESERVE = len("```\n") + len("\n```")  # re-opening and re-closing a split code fence
_DEFAULT_PLACEHOLDER = "Looking into it…"
_EMPTY_ANSWER = "_(no answer text)_"

_MODE_PREFIX = {Mode.CLARIFY: "🤔 ", Mode.HANDOFF: "🙋 ", Mode.REFUSED: "🚫 "}
_ANSWER_MODES = (Mode.ANSWER, Mode.DEGRADED)


# --- escaping and truncation ------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _safe_cut(text: str, cut: int) -> int:
    """Move `cut` back so that it does not split an entity (&amp;) or a surrogate pair."""
    amp = text.rfind("&", max(0, cut - 4), cut)
    if amp >= 0 and ";" not in text[amp:cut]:
        cut = amp
    return cut


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = _safe_cut(text, max(limit - len(ELLIPSIS), 0))
    return text[:cut].rstrip() + ELLIPSIS


def _safe_url(url: str | None) -> str | None:
    """Only http(s) and mailto links; characters that would break <url|label> are encoded."""
    if not url:
        return None
    url = url.strip()
    if not re.match(r"(?i)^(?:https?://|mailto:)\S", url):
        return None
    for raw, enc in (("<", "%3C"), (">", "%3E"), ("|", "%7C"), (" ", "%20"), ("\n", "")):
        url = url.replace(raw, enc)
    return url


def _link(url: str | None, label: str, limit: int = MAX_CONTEXT_CHARS) -> str:
    """`<url|label>` (label escaped, on one line, fitting `limit`) or the escaped label alone."""
    label = " ".join(label.split())
    safe = _safe_url(url)
    if safe is None or len(safe) > limit // 2:
        return _truncate(_escape(label), limit)
    return f"<{safe}|{_truncate(_escape(label), limit - len(safe) - 3)}>"


# --- markdown -> mrkdwn -----------------------------------------------------------------

_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<code_body>[^\n]{1,2000}?)(?P=ticks))"
    r"|(?P<link>\[(?P<label>[^\]\n]{1,500})\]"
    r"\((?P<url>[^()\s]{1,2000}(?:\([^()\s]*\)[^()\s]*)?)(?:\s+\"[^\"\n]*\")?\))"
    r"|(?P<auto><(?P<auto_url>(?:https?://|mailto:)[^<>\s]{1,2000})>)"
    r"|(?P<bolditalic>\*\*\*(?=[^\s*])(?P<bolditalic_body>[^\n]{1,1000}?)(?<=[^\s*])\*\*\*)"
    r"|(?P<bold>\*\*(?=\S)(?P<bold_body>[^\n]{1,1000}?)(?<=\S)\*\*(?!\*))"
    r"|(?P<bold2>(?<!\w)__(?=\S)(?P<bold2_body>[^\n]{1,1000}?)(?<=\S)__(?!\w))"
    r"|(?P<strike>~~(?=\S)(?P<strike_body>[^\n]{1,1000}?)(?<=\S)~~)"
    r"|(?P<em>\*(?=[^\s*])(?P<em_body>[^\n]{1,1000}?)(?<=[^\s*])\*(?!\*))"
    r"|(?P<em2>(?<!\w)_(?=[^\s_])(?P<em2_body>[^\n]{1,1000}?)(?<=[^\s_])_(?!\w))"
)
_FENCE = re.compile(r"^\s{0,3}(?P<fence>`{3,}|~{3,})\s*[\w+.#-]*\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<body>.*?)(?:\s+#+)?\s*$")
_BULLET = re.compile(r"^(?P<indent>\s*)[-*+]\s+(?P<body>.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")


_MARKS = {
    "bolditalic": "*_{}_*",
    "bold": "*{}*",
    "bold2": "*{}*",
    "strike": "~{}~",
    "em": "_{}_",
    "em2": "_{}_",
}


def _inline(text: str, plain: bool) -> str:
    """Convert one line's inline markdown; `plain` drops the formatting instead."""
    out: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(_escape(text[pos : m.start()]))
        pos = m.end()
        if m.group("code") is not None:
            body = _escape(m.group("code_body"))
            out.append(body if plain else m.group("ticks") + body + m.group("ticks"))
        elif m.group("link") is not None:
            label, url = m.group("label"), m.group("url")
            label_text = _strip_emphasis(label)
            if plain:
                safe = _safe_url(url)
                out.append(_escape(label_text) + (f" ({_escape(safe)})" if safe else ""))
            else:
                out.append(_link(url, label_text, MAX_SECTION_CHARS))
        elif m.group("auto") is not None:
            url = m.group("auto_url")
            safe = _safe_url(url)
            out.append(_escape(url) if plain or safe is None else f"<{safe}>")
        else:
            group = next(g for g in _MARKS if m.group(g))
            body = _inline(m.group(f"{group}_body"), plain)
            out.append(body if plain else _MARKS[group].format(body))
    out.append(_escape(text[pos:]))
    return "".join(out)


def _strip_emphasis(text: str) -> str:
    return re.sub(r"\*\*|__|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)", "", text)


def _convert(text: str, plain: bool) -> str:
    lines_out: list[str] = []
    fence: str | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        fm = _FENCE.match(line)
        if fence is not None:
            if fm and fm.group("fence")[0] == fence[0] and len(fm.group("fence")) >= len(fence):
                fence = None
                if not plain:
                    lines_out.append("```")
            else:
                lines_out.append(_escape(line))
            continue
        if fm:
            fence = fm.group("fence")
            if not plain:
                lines_out.append("```")
            continue
        if _RULE.match(line):
            lines_out.append("───")
            continue
        hm = _HEADING.match(line)
        if hm:
            body = _inline(_strip_emphasis(hm.group("body")), plain).strip()
            lines_out.append(body if plain or not body else f"*{body}*")
            continue
        bm = _BULLET.match(line)
        if bm:
            lines_out.append(f"{bm.group('indent')}• {_inline(bm.group('body'), plain)}")
            continue
        lines_out.append(_inline(line, plain))
    if fence is not None and not plain:
        if lines_out and lines_out[-1] == "```":
            lines_out.pop()  # a fence opened on the last line: nothing to show
        else:
            lines_out.append("```")  # close an unterminated fence
    return "\n".join(lines_out).strip("\n")


def markdown_to_mrkdwn(text: str) -> str:
    """Convert (CommonMark-ish) markdown to Slack mrkdwn, escaping &, < and > in the text."""
    return _convert(text, plain=False)


def _markdown_to_plain(text: str) -> str:
    """Markdown without its formatting (citation markers kept), escaped for Slack's `text`."""
    return _convert(text, plain=True)


# --- splitting long text into sections --------------------------------------------------

_WORD = re.compile(r"\s+|(?:<[^<>\n]*>|[^\s<]+|<)+")  # whitespace runs, or words (links atomic)


def _hard_split(word: str, limit: int) -> list[str]:
    out: list[str] = []
    while len(word) > limit:
        cut = _safe_cut(word, limit) or limit
        out.append(word[:cut])
        word = word[cut:]
    if word:
        out.append(word)
    return out


def _split_words(line: str, limit: int) -> list[str]:
    out: list[str] = []
    cur = ""
    for token in _WORD.findall(line):
        if len(cur) + len(token) <= limit:
            cur += token
            continue
        if cur.strip():
            out.append(cur)
        token = token.lstrip()
        if len(token) > limit:
            *full, cur = _hard_split(token, limit)
            out.extend(full)
        else:
            cur = token
    if cur.strip():
        out.append(cur)
    return out


def _pack(
    pieces: list[str], sep: str, limit: int, split_further: Callable[[str, int], list[str]]
) -> list[str]:
    out: list[str] = []
    cur: str | None = None
    for piece in pieces:
        if len(piece) > limit:
            if cur is not None:
                out.append(cur)
                cur = None
            out.extend(split_further(piece, limit))
            continue
        if cur is None:
            cur = piece
        elif len(cur) + len(sep) + len(piece) <= limit:
            cur = cur + sep + piece
        else:
            out.append(cur)
            cur = piece
    if cur is not None:
        out.append(cur)
    return out


def _split_lines(paragraph: str, limit: int) -> list[str]:
    return _pack(paragraph.split("\n"), "\n", limit, _split_words)


def _balance_fences(chunks: list[str]) -> list[str]:
    """Close a code fence at the end of a chunk and re-open it in the next one."""
    out: list[str] = []
    in_fence = False
    for chunk in chunks:
        if in_fence:
            chunk = "```\n" + chunk
        fences = sum(1 for line in chunk.split("\n") if line.strip() == "```")
        in_fence = fences % 2 == 1
        out.append(chunk + "\n```" if in_fence else chunk)
    return out


def split_mrkdwn(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Split mrkdwn into chunks of at most `limit` chars at paragraph, then line, then word
    boundaries (a word is only cut when it alone exceeds the limit); no chunk is blank."""
    inner = max(limit - _FENCE_RESERVE, 1)
    chunks = _pack(text.split("\n\n"), "\n\n", inner, _split_lines)
    chunks = [c.strip("\n") for c in chunks if c.strip()]
    chunks = _balance_fences(chunks)
    return [c if len(c) <= limit else _truncate(c, limit) for c in chunks]


# --- blocks -----------------------------------------------------------------------------


def _section(text: str, block_id: str) -> dict[str, Any]:
    text = _truncate(text, MAX_SECTION_CHARS) if text.strip() else ELLIPSIS
    return {"type": "section", "block_id": block_id, "text": {"type": "mrkdwn", "text": text}}


def _element(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _truncate(text, MAX_CONTEXT_CHARS) if text.strip() else "–"}


def _context_blocks(
    elements: list[str], block_id: str, max_blocks: int, more: Callable[[int], str]
) -> list[dict[str, Any]]:
    """Context blocks of ≤ 10 elements each; beyond `max_blocks` blocks the last element
    says how many were left out."""
    if not elements or max_blocks <= 0:
        return []
    capacity = max_blocks * MAX_CONTEXT_ELEMENTS
    if len(elements) > capacity:
        left_out = len(elements) - capacity + 1
        elements = [*elements[: capacity - 1], more(left_out)]
    return [
        {
            "type": "context",
            "block_id": f"{block_id}_{i // MAX_CONTEXT_ELEMENTS}",
            "elements": [_element(e) for e in elements[i : i + MAX_CONTEXT_ELEMENTS]],
        }
        for i in range(0, len(elements), MAX_CONTEXT_ELEMENTS)
    ]


def _citation_text(c: Citation) -> str:
    title = c.title.strip() or c.source.strip() or c.document_id or "source"
    label = f"[{c.n}] {title}" + (f", p. {c.page}" if c.page is not None else "")
    return _link(c.url, label)


def _notice_text(n: Notice) -> str:
    return "⚠️ " + _escape(" ".join(n.message.split()) or n.code)


def _ticket_text(ticket: dict[str, Any]) -> str | None:
    ticket_id = str(ticket.get("id") or "").strip()
    if not ticket_id:
        return None
    return _link(ticket.get("url"), f"Ticket {ticket_id}")


def _request_label(request_id: str) -> str:
    return _escape(request_id.replace("`", "").strip()) or "unknown"


def _footer(request_id: str, cached: bool = False) -> dict[str, Any]:
    text = f"Answerdesk · request `{_request_label(request_id)}`" + (" · cached" if cached else "")
    return {"type": "context", "block_id": BLOCK_FOOTER, "elements": [_element(text)]}


def _button(text: str, action_id: str, request_id: str, label: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
    }
    if request_id:
        button["value"] = request_id[:2000]
    if label:
        button["accessibility_label"] = label
    return button


def _actions(request_id: str, private: bool, votes: bool = True) -> dict[str, Any]:
    buttons = []
    if votes:
        buttons += [
            _button("👍", ACTION_FEEDBACK_UP, request_id, "Helpful"),
            _button("👎", ACTION_FEEDBACK_DOWN, request_id, "Not helpful"),
        ]
    buttons.append(_button("Talk to a human", ACTION_HUMAN, request_id, None))
    if private:
        buttons.append(
            _button("Send me the full answer privately", ACTION_PRIVATE, request_id, None)
        )
    return {"type": "actions", "block_id": BLOCK_ACTIONS, "elements": buttons}


def _feedback_buttons(request_id: str) -> dict[str, Any]:
    """Slack's own 👍/👎 for AI answers (a context_actions block), voting like the buttons."""

    def choice(emoji: str, action: Action, label: str) -> dict[str, Any]:
        return {
            "text": {"type": "plain_text", "text": emoji, "emoji": True},
            "value": f"{action}:{request_id}"[:2000],
            "accessibility_label": label,
        }

    return {
        "type": "context_actions",
        "block_id": BLOCK_FEEDBACK,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": ACTION_FEEDBACK,
                "positive_button": choice("👍", Action.HELPFUL, "Helpful"),
                "negative_button": choice("👎", Action.NOT_HELPFUL, "Not helpful"),
            }
        ],
    }


def parse_feedback(value: str) -> tuple[Action, str] | None:
    """The vote and request id of a feedback_buttons click, None when malformed."""
    vote, _, request_id = value.partition(":")
    if vote not in (Action.HELPFUL, Action.NOT_HELPFUL) or not request_id:
        return None
    return Action(vote), request_id


def _fallback(body: str, tail_lines: list[str]) -> str:
    """Plain-text fallback: body, then the tail lines (kept whole where possible)."""
    tail = "\n".join(tail_lines)
    budget = MAX_FALLBACK_CHARS - len(tail) - 2
    body = _truncate(body.strip(), budget) if budget > len(ELLIPSIS) else ""
    text = f"{body}\n\n{tail}" if body else tail
    return _truncate(text, MAX_FALLBACK_CHARS).strip() or "Answerdesk"


# --- public API -------------------------------------------------------------------------


def render_placeholder(text: str = _DEFAULT_PLACEHOLDER) -> dict[str, Any]:
    """A short 'working on it' message, replaced later by the answer."""
    shown = _truncate(_escape(" ".join(text.split())), MAX_CONTEXT_CHARS)
    shown = shown or _DEFAULT_PLACEHOLDER
    return {
        "text": shown,
        "blocks": [
            {"type": "context", "block_id": BLOCK_PLACEHOLDER, "elements": [_element(shown)]}
        ],
    }


DRAFT_NOTE = "✍️ Writing… this draft is checked before it is final."


def render_draft(text: str, note: str = DRAFT_NOTE) -> dict[str, Any]:
    """An answer's draft in the working message (where Slack refuses streaming): the text so
    far, marked as a draft."""
    chunks = split_mrkdwn(markdown_to_mrkdwn(text), MAX_SECTION_CHARS - len(ELLIPSIS))
    chunks = chunks[: MAX_BLOCKS - 1] or [ELLIPSIS]
    shown = _truncate(_escape(" ".join(note.split())), MAX_CONTEXT_CHARS)
    blocks = [_section(c, f"{BLOCK_TEXT}_{i}") for i, c in enumerate(chunks)]
    blocks.append({"type": "context", "block_id": BLOCK_PLACEHOLDER, "elements": [_element(shown)]})
    return {"text": _fallback(_markdown_to_plain(text), [shown]), "blocks": blocks}


def render_answer(
    answer: Answer,
    *,
    private_button: bool | None = None,
    feedback: bool = True,
    streamed: bool = False,
) -> dict[str, Any]:
    """The Slack message for an Answer: text sections, citations, notices, buttons, footer.
    ``streamed``: the answer of a streamed reply, voted on with Slack's feedback buttons."""
    sections, tail = _answer_blocks(answer, private_button, feedback, streamed)
    tail_lines = [f"⚠️ {_escape(n.message.strip())}" for n in answer.notices if n.message.strip()]
    tail_lines.append(f"Request {_request_label(answer.request_id or '')}")
    return {
        "text": _fallback(_markdown_to_plain(answer.text), tail_lines),
        "blocks": sections + tail,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def render_stream_end(answer: Answer, *, private_button: bool | None = None) -> list[dict]:
    """The blocks chat.stopStream puts under a streamed answer's text: citations, notices,
    feedback buttons, the other buttons and the footer."""
    return _answer_blocks(answer, private_button, True, True, with_text=False)[1]


def escape_stream_text(text: str) -> str:
    """Streamed markdown, with &, < and > escaped as everywhere else: model text cannot
    mention people (<!channel>) or forge links."""
    return _escape(text)


def _answer_blocks(
    answer: Answer,
    private_button: bool | None,
    feedback: bool,
    streamed: bool,
    *,
    with_text: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(text sections, everything after the text)."""
    mode = Mode(answer.mode)
    request_id = answer.request_id or ""
    is_answer = mode in _ANSWER_MODES

    # Everything but the text first: it is kept whole and the text gets what is left.
    tail: list[dict[str, Any]] = []
    if mode is Mode.HANDOFF and answer.ticket:
        ticket = _ticket_text(answer.ticket)
        if ticket:
            tail.append(
                {"type": "context", "block_id": BLOCK_TICKET, "elements": [_element(ticket)]}
            )
    show_actions = is_answer and feedback
    fixed = len(tail) + int(show_actions) * (1 + int(streamed)) + 1  # + footer
    room = MAX_BLOCKS - fixed - 1  # keep room for at least one text section

    notice_blocks = _context_blocks(
        [_notice_text(n) for n in answer.notices],
        BLOCK_NOTICES,
        min(MAX_NOTICE_BLOCKS, room // 2),
        lambda k: f"⚠️ …and {k} more notices",
    )
    citation_blocks: list[dict[str, Any]] = []
    if is_answer:  # sources are only shown next to an answer (never on a refusal)
        citation_blocks = _context_blocks(
            [_citation_text(c) for c in answer.citations],
            BLOCK_CITATIONS,
            room - len(notice_blocks),
            lambda k: f"…and {k} more sources",
        )
    tail += citation_blocks + notice_blocks
    if show_actions:
        private = private_button
        if private is None:
            private = any(n.code == NoticeCode.PRIVATE_ANSWER_AVAILABLE for n in answer.notices)
        if streamed:
            tail.append(_feedback_buttons(request_id))
        tail.append(_actions(request_id, private, votes=not streamed))
    tail.append(_footer(request_id, cached=answer.cache.get("status") == "hit"))
    if not with_text:
        return [], tail

    # The text, split into sections; truncated with "…" when it needs too many blocks.
    body = markdown_to_mrkdwn(answer.text)
    prefix = _MODE_PREFIX.get(mode, "")
    chunks = split_mrkdwn(prefix + body, MAX_SECTION_CHARS - len(ELLIPSIS)) if body else []
    if not chunks and (prefix or not (citation_blocks or notice_blocks)):
        chunks = [prefix.strip() or _EMPTY_ANSWER]
    available = MAX_BLOCKS - len(tail)
    if len(chunks) > available:
        chunks = chunks[:available]
        chunks[-1] += ELLIPSIS
    sections = [_section(c, f"{BLOCK_TEXT}_{i}") for i, c in enumerate(chunks)]
    return sections, tail


def render_notice_only(text: str, request_id: str) -> dict[str, Any]:
    """A one-line reply such as 'Thanks for the feedback', with the request footer."""
    body = markdown_to_mrkdwn(text).strip() or ELLIPSIS
    return {
        "text": _fallback(_markdown_to_plain(text), [f"Request {_request_label(request_id)}"]),
        "blocks": [_section(body, BLOCK_NOTICE_ONLY), _footer(request_id)],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def render_offer_human(text: str, request_id: str) -> dict[str, Any]:
    """The offer of a person: the question and a "Talk to a human" button."""
    body = _truncate(_escape(" ".join(text.split())), MAX_SECTION_CHARS) or ELLIPSIS
    return {
        "text": _truncate(text.strip(), MAX_FALLBACK_CHARS) or ELLIPSIS,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {
                "type": "actions",
                "block_id": BLOCK_OFFER_HUMAN,
                "elements": [_button("Talk to a human", ACTION_HUMAN, request_id, None)],
            },
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def render_message(message: Message) -> dict[str, Any]:
    """A conversation-layer message as a Slack message payload."""
    if isinstance(message, Working):
        return render_placeholder(message.text)
    if isinstance(message, AnswerMessage):
        return render_answer(message.answer, private_button=message.offer_private)
    if message.offer_human:
        return render_offer_human(message.text, message.request_id or "")
    return render_notice_only(message.text, message.request_id or "")
