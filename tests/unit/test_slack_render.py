"""Slack rendering (adapters.slack.render): markdown conversion, block forms, Slack limits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack.render import (
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_HUMAN,
    ACTION_PRIVATE,
    BLOCK_ACTIONS,
    BLOCK_CITATIONS,
    BLOCK_FOOTER,
    BLOCK_NOTICES,
    BLOCK_TICKET,
    escape_stream_text,
    markdown_to_mrkdwn,
    parse_feedback,
    render_answer,
    render_draft,
    render_notice_only,
    render_placeholder,
    render_stream_end,
    split_mrkdwn,
)
from core.answering.types import Answer, Citation, Mode, Notice, NoticeCode
from core.conversation.messages import Action


def _cite(n: int, *, url: str | None = None, page: int | None = None, title: str = "") -> Citation:
    return Citation(
        n=n,
        chunk_id=f"c{n}",
        document_id=f"d{n}",
        title=title or f"Doc {n}",
        source=f"doc{n}.md",
        page=page,
        url=url,
    )


def _answer(mode: Mode = Mode.ANSWER, text: str = "The answer [1].", **kw: Any) -> Answer:
    return Answer(request_id=kw.pop("request_id", "req-123"), mode=mode, text=text, **kw)


def _blocks(payload: dict, kind: str) -> list[dict]:
    return [b for b in payload["blocks"] if b["type"] == kind]


def _by_id(payload: dict, prefix: str) -> list[dict]:
    return [b for b in payload["blocks"] if b.get("block_id", "").startswith(prefix)]


def _section_texts(payload: dict) -> list[str]:
    return [b["text"]["text"] for b in _blocks(payload, "section")]


def _action_ids(payload: dict) -> list[str]:
    return [e["action_id"] for b in _blocks(payload, "actions") for e in b["elements"]]


def _check_limits(payload: dict) -> None:
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= 50
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids)), "block ids must be unique"
    for b in blocks:
        if b["type"] == "section":
            assert 1 <= len(b["text"]["text"]) <= 3000
            assert b["text"]["text"].strip()
        elif b["type"] == "context":
            assert 1 <= len(b["elements"]) <= 10
            for e in b["elements"]:
                assert 1 <= len(e["text"]) <= 2000
    assert payload["text"].strip()
    assert len(payload["text"]) <= 3000


# --- markdown -> mrkdwn -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic*", "_italic_"),
        ("_italic_", "_italic_"),
        ("***both***", "*_both_*"),
        ("**bold *and italic***", "*bold _and italic_*"),
        ("~~gone~~", "~gone~"),
        ("snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"),
        ("[the policy](https://wiki.example.com/p)", "<https://wiki.example.com/p|the policy>"),
        ("[**bold** label](https://x.example)", "<https://x.example|bold label>"),
        ("see <https://x.example/a>", "see <https://x.example/a>"),
        ("# Heading", "*Heading*"),
        ("### Sub **heading** ###", "*Sub heading*"),
        ("- one\n* two\n+ three\n  - nested", "• one\n• two\n• three\n  • nested"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("use `pip install x` now", "use `pip install x` now"),
        ("`**not bold**`", "`**not bold**`"),
        ("```python\nx = **1**\n# not a heading\n```", "```\nx = **1**\n# not a heading\n```"),
        ("```\nunterminated", "```\nunterminated\n```"),
        ("a\r\nb", "a\nb"),
        ("---", "───"),
    ],
)
def test_markdown_to_mrkdwn(markdown: str, expected: str) -> None:
    assert markdown_to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("Tom & Jerry", "Tom &amp; Jerry"),
        ("a < b > c", "a &lt; b &gt; c"),
        ("<!channel> please look", "&lt;!channel&gt; please look"),
        ("<@U123> <#C1|general>", "&lt;@U123&gt; &lt;#C1|general&gt;"),
        ("`a < b && c`", "`a &lt; b &amp;&amp; c`"),
        ("```\nif a < b && c > d:\n```", "```\nif a &lt; b &amp;&amp; c &gt; d:\n```"),
        ("**R&D <team>**", "*R&amp;D &lt;team&gt;*"),
        ("[A & <B>](https://x.example/?a=1&b=2)", "<https://x.example/?a=1&b=2|A &amp; &lt;B&gt;>"),
        ("[x](https://x.example/a|b>c)", "<https://x.example/a%7Cb%3Ec|x>"),
        # non-web schemes are not linked
        ("[click](javascript:alert(1))", "click"),
        ("[click](file:///etc/passwd)", "click"),
    ],
)
def test_markdown_escaping(markdown: str, expected: str) -> None:
    assert markdown_to_mrkdwn(markdown) == expected


@given(st.text(max_size=400))
def test_markdown_never_leaks_raw_angle_brackets(text: str) -> None:
    out = markdown_to_mrkdwn(text)
    # the only "<" left open a link this module built
    for i, ch in enumerate(out):
        if ch == "<":
            assert out.startswith(("<http://", "<https://", "<mailto:"), i)


# --- splitting ----------------------------------------------------------------------------


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    para = "word " * 100  # 500 chars
    text = "\n\n".join([para.strip()] * 10)
    chunks = split_mrkdwn(text, 1200)
    assert all(len(c) <= 1200 for c in chunks)
    assert all(c.count("word") == 200 or c is chunks[-1] for c in chunks)  # 2 paragraphs each

    long_line = " ".join(f"w{i}" for i in range(2000))
    chunks = split_mrkdwn(long_line, 500)
    assert all(len(c) <= 500 for c in chunks)
    assert " ".join(chunks).split() == long_line.split()  # no word was cut


def test_split_cuts_a_single_huge_word() -> None:
    chunks = split_mrkdwn("x" * 7000, 3000)
    assert [len(c) for c in chunks] == [2992, 2992, 1016]


def test_split_keeps_links_whole_and_reopens_code_fences() -> None:
    link = "<https://x.example/a|a label with several words>"
    chunks = split_mrkdwn(" ".join([link] * 100), 300)
    assert all(c.count("<") == c.count(">") for c in chunks)

    code = "```\n" + "\n".join(f"line {i}" for i in range(400)) + "\n```"
    chunks = split_mrkdwn(code, 500)
    assert len(chunks) > 1
    for c in chunks:
        assert len(c) <= 500
        assert c.startswith("```\n") and c.endswith("\n```")


# --- modes --------------------------------------------------------------------------------


def test_answer_mode() -> None:
    payload = render_answer(_answer(text="**Yes**, 25 days [1].", citations=[_cite(1, page=3)]))
    _check_limits(payload)
    assert payload["unfurl_links"] is False and payload["unfurl_media"] is False
    assert _section_texts(payload) == ["*Yes*, 25 days [1]."]
    assert [b["type"] for b in payload["blocks"]] == ["section", "context", "actions", "context"]
    assert _action_ids(payload) == [ACTION_FEEDBACK_UP, ACTION_FEEDBACK_DOWN, ACTION_HUMAN]
    assert payload["blocks"][-1]["block_id"] == BLOCK_FOOTER
    assert payload["text"].startswith("Yes, 25 days [1].")
    assert payload["text"].endswith("Request req-123")


def test_degraded_mode_renders_like_an_answer_with_notices() -> None:
    notice = Notice(NoticeCode.EXTRACTIVE_ONLY, "Quoted from the sources; the model is down.")
    payload = render_answer(_answer(Mode.DEGRADED, "> quote [1]", notices=[notice]))
    _check_limits(payload)
    assert _section_texts(payload) == ["&gt; quote [1]"]
    (notices,) = _by_id(payload, BLOCK_NOTICES)
    assert notices["elements"][0]["text"] == "⚠️ Quoted from the sources; the model is down."
    assert ACTION_FEEDBACK_UP in _action_ids(payload)
    assert "Quoted from the sources" in payload["text"]


def test_clarify_mode() -> None:
    payload = render_answer(
        _answer(Mode.CLARIFY, "Which office do you mean?", citations=[_cite(1)])
    )
    _check_limits(payload)
    assert _section_texts(payload) == ["🤔 Which office do you mean?"]
    assert not _blocks(payload, "actions")
    assert not _by_id(payload, BLOCK_CITATIONS)


def test_handoff_mode_with_linked_ticket() -> None:
    ticket = {"id": "T-42", "provider": "builtin", "url": "https://desk.example/t/42"}
    payload = render_answer(_answer(Mode.HANDOFF, "Passed to a colleague.", ticket=ticket))
    _check_limits(payload)
    assert _section_texts(payload) == ["🙋 Passed to a colleague."]
    (block,) = _by_id(payload, BLOCK_TICKET)
    assert block["elements"][0]["text"] == "<https://desk.example/t/42|Ticket T-42>"
    assert not _blocks(payload, "actions")


def test_handoff_ticket_without_url_and_without_ticket() -> None:
    ticket = {"id": "T-7", "provider": "builtin", "url": None}
    payload = render_answer(_answer(Mode.HANDOFF, "Passed on.", ticket=ticket))
    assert _by_id(payload, BLOCK_TICKET)[0]["elements"][0]["text"] == "Ticket T-7"
    payload = render_answer(_answer(Mode.HANDOFF, "No ticket."))
    assert not _by_id(payload, BLOCK_TICKET)


def test_refused_mode() -> None:
    payload = render_answer(_answer(Mode.REFUSED, "I can't help with that.", citations=[_cite(1)]))
    _check_limits(payload)
    assert _section_texts(payload) == ["🚫 I can't help with that."]
    assert not _blocks(payload, "actions")
    assert not _by_id(payload, BLOCK_CITATIONS)


@pytest.mark.parametrize("mode", list(Mode))
def test_every_mode_renders_with_empty_text(mode: Mode) -> None:
    payload = render_answer(_answer(mode, ""))
    _check_limits(payload)
    assert _blocks(payload, "section")


def test_mode_given_as_plain_string() -> None:
    payload = render_answer(_answer("clarify", "Which one?"))  # type: ignore[arg-type]
    assert _section_texts(payload) == ["🤔 Which one?"]


# --- citations ----------------------------------------------------------------------------


def test_citation_forms() -> None:
    citations = [
        _cite(1, url="https://wiki.example/a", page=4, title="Leave policy"),
        _cite(2, url="https://wiki.example/b", title="Travel"),
        _cite(3, page=12, title="Handbook <v2> & more"),
        _cite(4, title="Plain"),
        _cite(5, url="ftp://old.example/x", page=0, title="Old"),
    ]
    payload = render_answer(_answer(citations=citations))
    (block,) = _by_id(payload, BLOCK_CITATIONS)
    assert [e["text"] for e in block["elements"]] == [
        "<https://wiki.example/a|[1] Leave policy, p. 4>",
        "<https://wiki.example/b|[2] Travel>",
        "[3] Handbook &lt;v2&gt; &amp; more, p. 12",
        "[4] Plain",
        "[5] Old, p. 0",
    ]


def test_more_than_ten_citations_are_split_over_context_blocks() -> None:
    payload = render_answer(_answer(citations=[_cite(i) for i in range(1, 24)]))
    _check_limits(payload)
    blocks = _by_id(payload, BLOCK_CITATIONS)
    assert [len(b["elements"]) for b in blocks] == [10, 10, 3]
    assert blocks[2]["elements"][-1]["text"] == "[23] Doc 23"


def test_huge_citation_titles_are_truncated() -> None:
    payload = render_answer(
        _answer(citations=[_cite(1, url="https://x.example", title="t" * 5000)])
    )
    _check_limits(payload)
    text = _by_id(payload, BLOCK_CITATIONS)[0]["elements"][0]["text"]
    assert text.startswith("<https://x.example|[1] ttt") and text.endswith("…>")


def test_absurd_citation_counts_stay_within_fifty_blocks() -> None:
    payload = render_answer(_answer(citations=[_cite(i) for i in range(1, 1001)]))
    _check_limits(payload)
    assert _blocks(payload, "section") and _blocks(payload, "actions")
    last = _by_id(payload, BLOCK_CITATIONS)[-1]["elements"][-1]["text"]
    assert last.startswith("…and ") and last.endswith("more sources")


# --- notices and buttons ------------------------------------------------------------------


def test_notices_one_element_each_and_split_at_ten() -> None:
    notices = [Notice("fallback_tier", f"notice {i}") for i in range(12)]
    payload = render_answer(_answer(notices=notices))
    _check_limits(payload)
    blocks = _by_id(payload, BLOCK_NOTICES)
    assert [len(b["elements"]) for b in blocks] == [10, 2]
    assert blocks[0]["elements"][0]["text"] == "⚠️ notice 0"
    assert payload["text"].index("notice 0") < payload["text"].index("Request req-123")


def test_notice_message_is_escaped() -> None:
    payload = render_answer(_answer(notices=[Notice("x", "<!here> R&D")]))
    assert _by_id(payload, BLOCK_NOTICES)[0]["elements"][0]["text"] == "⚠️ &lt;!here&gt; R&amp;D"


PRIVATE = Notice(NoticeCode.PRIVATE_ANSWER_AVAILABLE, "A fuller answer is available in a DM.")


@pytest.mark.parametrize(
    ("private_button", "notices", "shown"),
    [
        (None, [], False),
        (None, [PRIVATE], True),
        (True, [], True),
        (False, [PRIVATE], False),
    ],
)
def test_private_button(private_button: bool | None, notices: list[Notice], shown: bool) -> None:
    payload = render_answer(_answer(notices=notices), private_button=private_button)
    assert (ACTION_PRIVATE in _action_ids(payload)) is shown


def test_buttons_carry_the_request_id() -> None:
    payload = render_answer(_answer(request_id="r-9f8e"), private_button=True)
    (actions,) = _blocks(payload, "actions")
    assert actions["block_id"] == BLOCK_ACTIONS
    assert len(actions["elements"]) == 4
    for button in actions["elements"]:
        assert button["type"] == "button"
        assert button["value"] == "r-9f8e"
        assert button["text"]["type"] == "plain_text" and button["text"]["text"]
    assert actions["elements"][3]["text"]["text"] == "Send me the full answer privately"


def test_feedback_false_hides_buttons() -> None:
    payload = render_answer(_answer(), feedback=False, private_button=True)
    assert not _blocks(payload, "actions")


def test_footer_and_cache_marker() -> None:
    footer = render_answer(_answer())["blocks"][-1]
    assert footer["elements"][0]["text"] == "Answerdesk · request `req-123`"
    cached = render_answer(_answer(cache={"status": "hit", "reason": ""}))["blocks"][-1]
    assert cached["elements"][0]["text"] == "Answerdesk · request `req-123` · cached"


# --- long text ----------------------------------------------------------------------------


def test_long_text_is_split_into_sections() -> None:
    text = "\n\n".join(f"Paragraph {i}. " + "lorem ipsum " * 40 for i in range(40))  # ~20k
    payload = render_answer(_answer(text=text, citations=[_cite(1)]))
    _check_limits(payload)
    sections = _section_texts(payload)
    assert 6 <= len(sections) <= 10
    assert all(not s.endswith("…") for s in sections)
    assert "".join(sections).count("Paragraph") == 40


def test_text_needing_too_many_blocks_is_truncated_keeping_the_rest() -> None:
    text = "\n\n".join("word " * 500 for _ in range(100))  # ~250k chars
    notices = [Notice("x", "n")]
    payload = render_answer(_answer(text=text, citations=[_cite(1)], notices=notices))
    _check_limits(payload)
    assert len(payload["blocks"]) == 50
    assert _section_texts(payload)[-1].endswith("…")
    assert _by_id(payload, BLOCK_CITATIONS) and _by_id(payload, BLOCK_NOTICES)
    assert _blocks(payload, "actions") and payload["blocks"][-1]["block_id"] == BLOCK_FOOTER
    assert payload["text"].endswith("Request req-123")


def test_twenty_thousand_char_single_word() -> None:
    payload = render_answer(_answer(text="x" * 20_000))
    _check_limits(payload)
    assert sum(len(s) for s in _section_texts(payload)) == 20_000


# --- placeholder and notice-only ----------------------------------------------------------


def test_placeholder() -> None:
    payload = render_placeholder()
    assert payload["text"] == "Looking into it…"
    assert payload["blocks"][0]["type"] == "context"
    assert payload["blocks"][0]["elements"][0]["text"] == "Looking into it…"
    assert render_placeholder("A < B")["blocks"][0]["elements"][0]["text"] == "A &lt; B"
    assert render_placeholder("   ")["text"] == "Looking into it…"


def test_a_streamed_answer_is_voted_on_with_slacks_feedback_buttons() -> None:
    payload = render_answer(_answer(request_id="req-9"), private_button=True, streamed=True)
    _check_limits(payload)
    [feedback] = _blocks(payload, "context_actions")
    [buttons] = feedback["elements"]
    assert buttons["type"] == "feedback_buttons"
    up, down = buttons["positive_button"]["value"], buttons["negative_button"]["value"]
    assert parse_feedback(up) == (Action.HELPFUL, "req-9")
    assert parse_feedback(down) == (Action.NOT_HELPFUL, "req-9")
    assert _action_ids(payload) == [ACTION_HUMAN, ACTION_PRIVATE]  # no second pair of votes
    for bad in ("", "helpful", "helpful:", "maybe:req-9", "req-9"):
        assert parse_feedback(bad) is None
    # Not an answer (a refusal, a hand-off): no votes of either kind.
    assert not _blocks(
        render_answer(_answer(Mode.REFUSED, "No."), streamed=True), "context_actions"
    )


def test_drafts_and_streamed_text_are_escaped_and_marked() -> None:
    assert escape_stream_text("<!channel> R&D <@U1>") == "&lt;!channel&gt; R&amp;D &lt;@U1&gt;"
    draft = render_draft("**Passes** last <!here> 24 hours")
    _check_limits(draft)
    assert _section_texts(draft) == ["*Passes* last &lt;!here&gt; 24 hours"]
    assert "Writing" in draft["blocks"][-1]["elements"][0]["text"]
    _check_limits(render_draft(""))
    _check_limits(render_draft("x" * 200_000))


def test_notice_only() -> None:
    payload = render_notice_only("Thanks for the **feedback**", "req-1")
    _check_limits(payload)
    assert _section_texts(payload) == ["Thanks for the *feedback*"]
    assert payload["blocks"][-1]["elements"][0]["text"] == "Answerdesk · request `req-1`"
    assert payload["text"] == "Thanks for the feedback\n\nRequest req-1"
    _check_limits(render_notice_only("", ""))


# --- properties ---------------------------------------------------------------------------

_TOKENS = [*"ab c\n*_`#-<>&[]()~|", "\n\n", "https://x.y", "```", "🙂", "word "]
_markdownish = st.lists(st.sampled_from(_TOKENS), max_size=300).map("".join)
_texts = st.one_of(
    st.text(max_size=500),
    _markdownish,
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=40), st.integers(1, 3000)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_texts,
    mode=st.sampled_from(list(Mode)),
    n_citations=st.integers(0, 600),
    notices=st.lists(st.text(max_size=2500), max_size=40),
    urls=st.booleans(),
    title=st.text(max_size=3000),
    cached=st.booleans(),
    private=st.sampled_from([None, True, False]),
    streamed=st.booleans(),
)
def test_render_answer_respects_slack_limits(
    text: str,
    mode: Mode,
    n_citations: int,
    notices: list[str],
    urls: bool,
    title: str,
    cached: bool,
    private: bool | None,
    streamed: bool,
) -> None:
    citations = [
        _cite(
            i,
            url=f"https://x.example/{i}" if urls else None,
            page=i if i % 2 else None,
            title=title,
        )
        for i in range(1, n_citations + 1)
    ]
    answer = _answer(
        mode,
        text,
        citations=citations,
        notices=[Notice("x", m) for m in notices],
        cache={"status": "hit" if cached else "miss"},
    )
    payload = render_answer(answer, private_button=private, streamed=streamed)
    _check_limits(payload)
    assert payload["blocks"][-1]["block_id"] == BLOCK_FOOTER
    if streamed:  # what chat.stopStream adds under streamed text: the same, without the text
        end = render_stream_end(answer, private_button=private)
        assert 1 <= len(end) <= 50 and end == payload["blocks"][-len(end) :]
        assert not any(b["block_id"].startswith("answerdesk_text") for b in end)
