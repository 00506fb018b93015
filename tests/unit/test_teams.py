"""The Teams adapter's pure parts: rendering, activity parsing, the streaming sender, setup."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.teams.activities import (
    bot_added_in_personal_scope,
    parse_card_submit,
    parse_feedback,
    parse_message,
    strip_mentions,
    tenant_of,
)
from adapters.teams.identity import TeamsIdentity
from adapters.teams.render import render_answer, split_markers
from adapters.teams.setup import teams_setup
from adapters.teams.streaming import Final, Status, TeamsStream, TextDelta
from core.answering.types import Answer, Citation, Mode, Notice
from core.directory import PlatformIdentity, unknown

BOT = "28:bot"


def _answer(**overrides: Any) -> Answer:
    fields: dict[str, Any] = {
        "request_id": "req123",
        "mode": Mode.ANSWER,
        "text": "PTO is 20 days [1, 2]; the cap is 240 hours [2].",
        "citations": [
            Citation(1, "c1", "handbook/pto.md", "Paid time off", "handbook/pto.md", None),
            Citation(2, "c2", "handbook/pto.pdf", "PTO policy " + "x" * 200, "pto.pdf", 4,
                     "https://intranet.example.com/pto.pdf"),
        ],
        "model": "openai/gpt-4o-mini",
    }  # fmt: skip
    return Answer(**{**fields, **overrides})


def test_citation_entity_positions_match_the_markers_in_the_text() -> None:
    activity = render_answer(_answer())
    text = activity["text"]
    assert text.startswith("PTO is 20 days [1][2]; the cap is 240 hours [2].")
    (entity,) = activity["entities"]
    assert entity["@type"] == "Message" and entity["additionalType"] == ["AIGeneratedContent"]
    claims = {c["position"]: c["appearance"] for c in entity["citation"]}
    assert set(claims) == {int(n) for n in re.findall(r"\[(\d+)\]", text)} == {1, 2}
    assert claims[2]["url"] == "https://intranet.example.com/pto.pdf"
    assert claims[2]["keywords"] == ["p. 4"] and len(claims[2]["abstract"]) <= 160
    assert len(claims[2]["name"]) <= 80
    assert "Request req123" in text and "1. Paid time off" in text  # plain-text fallback
    assert activity["channelData"] == {"feedbackLoopEnabled": True}
    card = activity["attachments"][0]["content"]
    assert card["version"] == "1.5" and card["actions"][0]["title"] == "Talk to a human"
    assert card["actions"][0]["data"] == {"action": "talk_to_human", "request_id": "req123"}


def test_notices_are_marked_and_quotes_are_not_labelled_ai() -> None:
    degraded = _answer(
        mode=Mode.DEGRADED,
        model=None,
        notices=[Notice("model_unavailable", "The language model is unavailable.")],
    )
    activity = render_answer(degraded)
    assert "⚠️ **Degraded mode**" in activity["text"]
    assert "⚠️ The language model is unavailable." in activity["text"]
    assert "additionalType" not in activity["entities"][0]
    refused = render_answer(_answer(mode=Mode.REFUSED, citations=[], text="I can't help."))
    assert "attachments" not in refused and refused["text"].startswith("🚫 ")


def test_model_text_cannot_forge_mentions_or_markup() -> None:
    activity = render_answer(_answer(text="Hi <at>Everyone</at> <script>x</script> [1]"))
    assert "<at>" not in activity["text"] and "&lt;at&gt;" in activity["text"]


def test_split_markers() -> None:
    assert split_markers("a [1, 3] b [2] c [4,5]") == "a [1][3] b [2] c [4][5]"
    assert split_markers("year [2024] stays") == "year [2024] stays"


def _activity(**fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "1",
        "recipient": {"id": BOT},
        "from": {"id": "29:u", "aadObjectId": "ABC-1"},
        "conversation": {"id": "19:c", "conversationType": "groupChat"},
        "channelData": {"tenant": {"id": "T-1"}},
        **fields,
    }


def test_mentions_of_the_bot_are_removed_others_keep_their_names() -> None:
    activity = _activity(
        text="<at>Answerdesk</at> ask <at>Ada Lovelace</at> about&nbsp;PTO\n",
        entities=[
            {"type": "mention", "text": "<at>Answerdesk</at>", "mentioned": {"id": BOT}},
            {"type": "mention", "text": "<at>Ada Lovelace</at>", "mentioned": {"id": "29:ada"}},
        ],
    )
    assert strip_mentions(activity) == "ask Ada Lovelace about PTO"
    message = parse_message(activity)
    assert message is not None and message.tenant_id == "t-1"
    assert message.user.aad_object_id == "abc-1" and message.conversation_type == "groupChat"
    bare = _activity(text="<at>Answerdesk</at>", entities=activity["entities"])
    assert parse_message(bare) is None  # a bare mention asks nothing
    assert parse_message(_activity(text="  ")) is None


def test_tenant_and_install_events() -> None:
    assert tenant_of({"conversation": {"tenantId": "X"}}) == "x"
    added = _activity(
        type="conversationUpdate",
        membersAdded=[{"id": BOT}],
        conversation={"id": "a:1", "conversationType": "personal"},
    )
    assert bot_added_in_personal_scope(added)
    assert not bot_added_in_personal_scope({**added, "membersAdded": [{"id": "29:x"}]})


@pytest.mark.parametrize(
    ("feedback", "text"),
    [('{"feedbackText":"Too vague"}', "Too vague"), ({"feedbackText": "ok"}, "ok"),
     ("plain words", "plain words"), (None, None)],
)  # fmt: skip
def test_feedback_invoke_parsing(feedback: Any, text: str | None) -> None:
    invoke = _activity(
        type="invoke",
        name="message/submitAction",
        replyToId="42",
        value={"actionName": "feedback", "actionValue": {"reaction": "like", "feedback": feedback}},
    )
    event = parse_feedback(invoke)
    assert event is not None and (event.reply_to_id, event.reaction, event.text) == (
        "42",
        "like",
        text,
    )
    assert parse_feedback({**invoke, "value": {"actionName": "other"}}) is None
    assert parse_feedback({**invoke, "replyToId": None}) is None


def test_card_submit_parsing() -> None:
    submit = _activity(value={"action": "talk_to_human", "request_id": "r1"}, text="")
    event = parse_card_submit(submit)
    assert event is not None and event.request_id == "r1" and event.tenant_id == "t-1"
    assert parse_card_submit(_activity(value={"action": "other"})) is None
    assert parse_message(submit) is None  # a submit is never a question


async def _source(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def test_a_refused_stream_still_delivers_the_final_answer_unstreamed() -> None:
    sent: list[dict] = []

    async def send(activity: dict) -> str:
        sent.append(activity)
        if activity["type"] == "typing" and len(sent) > 1:
            raise RuntimeError("403 ContentStreamNotAllowed")  # the user pressed Stop
        return "s1"

    stream = TeamsStream(send, interval_s=0)
    answer, _ = await stream.run(
        _source([Status("Searching"), TextDelta("PTO "), TextDelta("is"), Final(_answer())])
    )
    assert answer.request_id == "req123"
    assert [a["type"] for a in sent] == ["typing", "typing", "message"]
    assert all(e.get("type") != "streaminfo" for e in sent[-1]["entities"])


async def test_status_after_text_is_not_sent_and_unchanged_text_not_resent() -> None:
    sent: list[dict] = []

    async def send(activity: dict) -> str:
        sent.append(activity)
        return "s1"

    await TeamsStream(send, interval_s=0).run(
        _source([TextDelta("A"), Status("late"), TextDelta(""), Final(_answer())])
    )
    infos = [next(e for e in a["entities"] if e["type"] == "streaminfo") for a in sent]
    assert [i["streamType"] for i in infos] == ["streaming", "final"]
    assert infos[1]["streamId"] == "s1"


class _Directory:
    async def resolve_identity(self, identity: PlatformIdentity) -> Any:
        return unknown()


class _Roster:
    def __init__(self, members: list[dict] | Exception) -> None:
        self._members = members

    async def members(self) -> list[dict]:
        if isinstance(self._members, Exception):
            raise self._members
        return self._members

    async def member(self, user_id: str) -> dict | None:
        return None


async def test_unknown_members_fail_closed_and_an_unreadable_roster_means_public() -> None:
    identity = TeamsIdentity(_Directory(), member_cache_ttl_s=60)  # type: ignore[arg-type]
    roster = _Roster([{"id": "29:1a-B_c"}, {"id": "29:x", "email": "Ada@X.example"}])
    audience = await identity.members_of(roster, "t", "19:c", "groupChat")  # type: ignore[arg-type]
    assert audience.kind == "members" and "ada@x.example" in audience.members
    unknown_member = next(m for m in audience.members if m.startswith("unknown-teams-member"))
    # One placeholder per unknown member, so the audience can never widen to `public` + them.
    assert unknown_member == "unknown-teams-member-29-1a-b_c@invalid"
    broken = await identity.members_of(_Roster(OSError()), "t", "19:d", "groupChat")  # type: ignore[arg-type]
    assert broken.kind == "public"
    assert (await identity.members_of(roster, "t", "a:1", "personal")).kind == "dm"  # type: ignore[arg-type]


def test_setup_reasons() -> None:
    base = dict(
        app_id="id",
        app_password="pw",
        app_type=None,
        tenant_id=None,
        openid_metadata_url="https://login.botframework.com/v1/.well-known/openidconfiguration",
        token_url=None,
        allowed_tenants=[],
    )
    assert "MICROSOFT_APP_PASSWORD" in teams_setup(**{**base, "app_password": None})
    assert "no tenant may use the bot" in teams_setup(**base)
    setup = teams_setup(**{**base, "tenant_id": "T1"})
    assert not isinstance(setup, str)
    assert setup.allowed_tenants == {"t1"}
    assert setup.token_url.endswith("/botframework.com/oauth2/v2.0/token")
    single = teams_setup(**{**base, "tenant_id": "T1", "app_type": "SingleTenant"})
    assert not isinstance(single, str) and "/t1/oauth2" in single.token_url
    assert "pw" not in repr(single)
