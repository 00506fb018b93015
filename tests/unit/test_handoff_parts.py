"""The handoff's small parts on their own: backoff, Retry-After, signatures, each ticket
system's loop-back parser, the Jira description, and what a ticket says (redaction)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from adapters.tickets import jira, servicenow, signing, webhook, zendesk
from adapters.tickets.http import retry_after_seconds
from core.answering.memory import Turn
from core.conversation.types import ConversationRef
from core.handoff.content import ContentBuilder, ContentConfig
from core.handoff.service import DeliveryConfig, retry_delay
from core.handoff.types import DeliveryError, EventKind
from core.tickets import TicketRequest
from tests.support.ticket_systems import _adf_ok

CONFIG = DeliveryConfig(backoff_s=2.0, max_backoff_s=60.0)


# --- backoff ------------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_and_stops_at_the_cap() -> None:
    error = DeliveryError("HTTP 503")
    for attempts, step in ((1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (20, 60.0)):
        low = retry_delay(attempts, error, CONFIG, rng=lambda: 0.0)
        high = retry_delay(attempts, error, CONFIG, rng=lambda: 0.999999)
        assert (low, round(high, 3)) == (step / 2, round(step * 0.999999 / 2 + step / 2, 3))


def test_retry_after_is_honoured_never_earlier_and_permanent_errors_wait_longest() -> None:
    for retry_after in (0.0, 1.0, 30.0, 3600.0):
        error = DeliveryError("429", retry_after=retry_after)
        assert retry_delay(3, error, CONFIG, rng=lambda: 0.0) == retry_after
        later = retry_delay(3, error, CONFIG, rng=lambda: 1.0)
        assert retry_after <= later <= retry_after + 1.0
    assert retry_delay(1, DeliveryError("400", permanent=True), CONFIG) == CONFIG.max_backoff_s


def test_retry_after_header_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 12, 12, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# --- signatures -------------------------------------------------------------------------------


def test_our_signature_is_hmac_over_timestamp_dot_body_and_expires_after_5_minutes() -> None:
    body = b'{"id": "AD-1"}'
    headers = signing.sign("s3cret", body, timestamp=1_800_000_000)
    expected = hmac.new(b"s3cret", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert headers == {
        "X-Answerdesk-Timestamp": "1800000000",
        "X-Answerdesk-Signature": f"v1={expected}",
    }
    assert signing.verify("s3cret", headers, body, now=1_800_000_000 + 300)
    assert not signing.verify("s3cret", headers, body, now=1_800_000_000 + 301)
    assert not signing.verify("s3cret", headers, body + b" ", now=1_800_000_000)
    assert not signing.verify("other", headers, body, now=1_800_000_000)
    assert not signing.verify("s3cret", {}, body, now=1_800_000_000)


def test_the_ticket_systems_signatures() -> None:
    body = b'{"webhookEvent": "comment_created"}'
    hub = hmac.new(b"jira", body, hashlib.sha256).hexdigest()
    assert signing.verify_hub_signature("jira", {"X-Hub-Signature": f"sha256={hub}"}, body)
    assert not signing.verify_hub_signature("jira", {"X-Hub-Signature": f"sha1={hub}"}, body)
    assert not signing.verify_hub_signature("jira", {"X-Hub-Signature": f"sha256={hub}"}, b"{}")

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hmac.new(b"zd", stamp.encode() + body, hashlib.sha256).digest())
    headers = {
        "X-Zendesk-Webhook-Signature": digest.decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    assert signing.verify_zendesk("zd", headers, body)
    assert not signing.verify_zendesk("zd", headers, body, now=time.time() + 400)  # a replay
    assert not signing.verify_zendesk("other", headers, body)

    assert signing.verify_bearer("snow", {"Authorization": "Bearer snow"})
    assert not signing.verify_bearer("snow", {"Authorization": "Bearer snowy"})
    assert not signing.verify_bearer("snow", {"Authorization": "Basic snow"})


# --- what each system reports back --------------------------------------------------------------


def test_jira_internal_comments_restricted_comments_and_done_statuses() -> None:
    def comment(**fields: object) -> dict:
        return {
            "webhookEvent": "comment_created",
            "issue": {"id": "10001", "key": "HELP-3"},
            "comment": {"id": "77", "author": {"displayName": "Alex"}, **fields},
        }

    [public] = jira.parse(comment(body="Fixed.", jsdPublic=True))
    assert (public.ticket, public.kind, public.public, public.text) == (
        "HELP-3",
        EventKind.COMMENT,
        True,
        "Fixed.",
    )
    assert not jira.parse(comment(body="x", jsdPublic=False))[0].public
    restricted = comment(body="x", visibility={"type": "role", "value": "Administrators"})
    assert not jira.parse(restricted)[0].public
    words = [{"type": "text", "text": "Reset "}, {"type": "text", "text": "done."}]
    adf = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": words}]}
    assert jira.parse(comment(body=adf))[0].text == "Reset done."
    category = {"key": "indeterminate"}
    status = {
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "id": "10001",
            "key": "HELP-3",
            "fields": {"status": {"statusCategory": category}},
        },
        "changelog": {"id": "5", "items": [{"field": "status", "toString": "In Progress"}]},
    }
    [moved] = jira.parse(status)
    assert (moved.kind, moved.status, moved.resolved) == (EventKind.STATUS, "In Progress", False)
    category["key"] = "done"
    assert jira.parse(status)[0].resolved
    assert jira.parse({"webhookEvent": "jira:issue_updated", "issue": {"key": "HELP-3"}}) == []


def test_zendesk_only_staff_comments_and_solved_resolves() -> None:
    def event(kind: str, body: dict) -> dict:
        time_ = "2025-01-08T14:25:30.123456789Z"
        return {"type": kind, "id": "e-1", "detail": {"id": "35436"}, "event": body, "time": time_}

    staff = {
        "id": 1,
        "body": "On it",
        "is_public": True,
        "author": {"is_staff": True, "name": "Sam"},
    }
    [comment] = zendesk.parse(event("zen:event-type:ticket.comment_added", {"comment": staff}))
    assert (comment.ticket, comment.public, comment.author) == ("35436", True, "Sam")
    assert comment.at == datetime(2025, 1, 8, 14, 25, 30, 123456, tzinfo=UTC)
    private = {**staff, "is_public": False}
    assert not zendesk.parse(event("zen:event-type:ticket.comment_added", {"comment": private}))[
        0
    ].public
    requester = {**staff, "author": {"is_staff": False, "name": "Jordan"}}
    assert zendesk.parse(event("zen:event-type:ticket.comment_added", {"comment": requester})) == []
    [solved] = zendesk.parse(event("zen:event-type:ticket.status_changed", {"current": "SOLVED"}))
    assert solved.resolved and solved.status == "Solved"
    pending = zendesk.parse(event("zen:event-type:ticket.status_changed", {"current": "PENDING"}))
    assert not pending[0].resolved


def test_servicenow_work_notes_stay_internal_and_journal_headers_go() -> None:
    payload = {
        "number": "INC0010001",
        "sys_id": "abc",
        "sys_mod_count": "9",
        "updated_by": "Beth",
        "comments": "2026-12-12 10:00:00 - Beth Anglin (Additional comments)\nPlease retry.",
        "work_notes": "2026-12-12 10:00:00 - Beth Anglin (Work notes)\nUser is VIP",
        "state_changed": True,
        "state": "Resolved",
        "state_code": "6",
    }
    comment, note, state = servicenow.parse(payload)
    assert (comment.public, comment.text) == (True, "Please retry.")
    assert (note.public, note.text) == (False, "User is VIP")
    assert state.kind == EventKind.STATUS and state.resolved and state.status == "Resolved"
    assert len({comment.event_id, note.event_id, state.event_id}) == 3
    assert (
        servicenow.parse({**payload, "state_code": "2", "comments": "", "work_notes": ""})[
            0
        ].resolved
        is False
    )


def test_our_loop_back_format_is_checked() -> None:
    [event] = webhook.parse(
        {"id": "e", "ticket": "DESK-1", "type": "status", "status": "Solved", "resolved": True}
    )
    assert event.resolved and event.public
    for bad in (
        {"ticket": "DESK-1", "type": "comment"},
        {"id": "e", "ticket": "DESK-1", "type": "x"},
    ):
        with pytest.raises(ValueError):
            webhook.parse(bad)


# --- what a ticket says ------------------------------------------------------------------


class Memory:
    def __init__(self, turns: list[Turn]) -> None:
        self.turns = turns

    async def recent(self, conversation_id: str, limit: int, max_age_s: float) -> list[Turn]:
        return self.turns[-limit:]

    async def add(self, conversation_id: str, turn: Turn) -> None:
        self.turns.append(turn)


WHERE = ConversationRef("slack", "T1", "C1", "100.1", "100.1")
IT_ANSWER = {
    "text": "Call IT at it-help@corp.example [1].",
    "mode": "answer",
    "citations": [
        {"n": 1, "title": "IT runbook", "source": "it/runbook.md", "page": None, "url": None}
    ],
    "notices": [{"code": "extractive_only", "message": "Quoted only."}],
}
CLARIFY = {"text": "Which office?", "mode": "clarify", "citations": [], "notices": []}
TURNS = [
    Turn("Who do I call, 415-555-0132?", "x", "answer", "r1", IT_ANSWER),
    Turn("and after hours?", "x", "clarify", "r2", CLARIFY),
]
REQUEST = TicketRequest(
    "r1",
    WHERE.conversation_id,
    "ada@corp.example",
    "Who do I call, [phone]?",
    "asked for a human (slack button)",
    WHERE,
    "U1",
)


async def test_a_ticket_carries_the_transcript_the_answer_and_the_way_back() -> None:
    builder = ContentBuilder(
        Memory(list(TURNS)),
        ContentConfig(url_base="https://ad.example/admin/"),
        {"slack": lambda where: f"https://chat.example/{where.conversation}/{where.thread}"},
    )
    content = await builder.build(REQUEST)
    assert content["answer"]["request_id"] == "r1"  # the answer the button was on
    assert content["answer"]["text"] == "Call IT at [email] [1]."
    assert content["answer"]["citations"][0]["title"] == "IT runbook"
    assert content["answer"]["notices"] == [{"code": "extractive_only", "message": "Quoted only."}]
    assert [t["question"] for t in content["transcript"]] == [
        "Who do I call, [phone]?",
        "and after hours?",
    ]
    assert content["asker"] == {
        "email": "ada@corp.example",
        "name": "Ada",
        "platform": "slack",
        "user_id": "U1",
        "tenant": "T1",
    }
    assert content["conversation"]["link"] == "https://chat.example/C1/100.1"
    assert content["trace_url"] == "https://ad.example/admin/traces/r1"
    assert content["trigger"] == "asked for a human (slack button)"
    assert "415-555-0132" not in json.dumps(content)


@pytest.mark.parametrize(
    ("pii_redaction", "redaction", "phone_kept", "hidden"),
    [
        (True, "none", False, False),
        (False, "pii", False, False),
        (False, "none", True, False),
        (True, "all", False, True),
    ],
)
async def test_redaction_settings_apply_to_every_text_field(
    pii_redaction: bool, redaction: str, phone_kept: bool, hidden: bool
) -> None:
    question = "My card 4111 1111 1111 1111 failed"
    request = TicketRequest(
        "r3", WHERE.conversation_id, "ada@corp.example", question, "topic rule payments", WHERE
    )
    content = await ContentBuilder(
        Memory(list(TURNS)), ContentConfig(pii_redaction=pii_redaction, redaction=redaction)
    ).build(request)
    text = json.dumps(content)
    assert ("415-555-0132" in text) is phone_kept
    assert ("4111 1111 1111 1111" in text) is phone_kept
    assert ("it-help@corp.example" in text) is phone_kept
    if hidden:
        assert content["question"] == "[redacted: 34 characters]"
        assert all(t["question"].startswith("[redacted") for t in content["transcript"])
        assert content["answer"]["text"].startswith("[redacted")
    assert content["asker"]["email"] == "ada@corp.example"  # whom the ticket is for


async def test_the_jira_description_is_valid_adf_even_when_sparse() -> None:
    full = await ContentBuilder(Memory(list(TURNS)), ContentConfig()).build(REQUEST)
    bare = await ContentBuilder(None, ContentConfig()).build(
        TicketRequest("r9", None, None, "", "asked for a human")
    )
    for content in (full, bare):
        document = jira.description(content)
        assert document["type"] == "doc" and document["version"] == 1
        assert _adf_ok(document), json.dumps(document)
    assert "IT runbook" in json.dumps(jira.description(full))
