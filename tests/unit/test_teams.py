"""The Teams adapter's pure parts: rendering, activity parsing, links, the streaming reply,
the identity port's fail-closed rules, setup."""

from __future__ import annotations

import asyncio
import re
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
from adapters.teams.identity import Rosters, TeamsIdentity
from adapters.teams.links import conversation_link
from adapters.teams.render import render_answer, render_message, split_markers
from adapters.teams.setup import teams_setup
from adapters.teams.streaming import REVISING, StreamingReply
from core.answering.types import Answer, Citation, Mode, Notice
from core.conversation.messages import Action, AnswerMessage, Progress, TextMessage
from core.conversation.people import People
from core.conversation.types import ChatUser, ConversationKind, ConversationRef
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
    assert len(card["actions"]) == 1  # the private answer only when it is offered
    offered = render_message(AnswerMessage(_answer(), offer_private=True))
    private = offered["attachments"][0]["content"]["actions"][1]
    assert private["data"] == {"action": "private_answer", "request_id": "req123"}


def test_text_messages_carry_the_request_and_the_offer_of_a_person_its_button() -> None:
    offer = render_message(TextMessage("Want a person?", "req9", offer_human=True))
    assert offer["text"] == "Want a person?\n\n*Request req9*"
    [action] = offer["attachments"][0]["content"]["actions"]
    assert action["data"] == {"action": "talk_to_human", "request_id": "req9"}
    agent = render_message(TextMessage("💬 **Kim**: <at>All</at> see [AD-1](https://x.example)"))
    assert "attachments" not in agent and "<at>" not in agent["text"]
    assert "[AD-1](https://x.example)" in agent["text"]  # markdown links stay


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
    assert event.action is Action.HUMAN
    assert event.user.chat_user("t-1") == ChatUser("abc-1", ("t-1",))  # by Entra object id
    private = parse_card_submit(
        {**submit, "value": {"action": "private_answer", "request_id": "r"}}
    )
    assert private is not None and private.action is Action.PRIVATE
    assert parse_card_submit(_activity(value={"action": "other", "request_id": "r"})) is None
    assert parse_message(submit) is None  # a submit is never a question


def test_a_message_becomes_a_turn_with_a_reference_to_its_conversation() -> None:
    activity = _activity(
        text="hello",
        serviceUrl="https://smba.example/teams/",
        channelData={"tenant": {"id": "T-1"}, "team": {"id": "19:t", "aadGroupId": "g-1"}},
        conversation={"id": "19:c;messageid=17", "conversationType": "channel"},
    )
    turn = parse_message(activity).turn()  # type: ignore[union-attr]
    assert (turn.where.platform, turn.where.tenant, turn.where.conversation) == (
        "teams", "t-1", "19:c;messageid=17",
    )  # fmt: skip
    assert turn.where.message == "1" and turn.where.thread == ""
    assert turn.where.extra == {
        "conversation_type": "channel",
        "service_url": "https://smba.example/teams/",
        "team_id": "19:t",
        "team_group_id": "g-1",
    }
    assert turn.asker == ChatUser("abc-1", ("t-1",)) and turn.text == "hello"


def test_links_back_to_a_group_chat_message_and_a_channel_thread_none_to_a_1_1_chat() -> None:
    group = ConversationRef("teams", "t-1", "19:abc@thread.v2", message="1700000000123")
    assert conversation_link(group) == (
        "https://teams.microsoft.com/l/message/19%3Aabc%40thread.v2/1700000000123"
        "?tenantId=t-1&context=%7B%22contextType%22%3A%22chat%22%7D"
    )
    channel = ConversationRef(
        "teams", "t-1", "19:chan@thread.tacv2;messageid=1700000000001",
        message="1700000000555", extra={"team_group_id": "g-1"},
    )  # fmt: skip
    assert conversation_link(channel) == (
        "https://teams.microsoft.com/l/message/19%3Achan%40thread.tacv2/1700000000001"
        "?tenantId=t-1&parentMessageId=1700000000001&groupId=g-1"
    )
    assert conversation_link(ConversationRef("teams", "t-1", "a:1xyz", message="5")) is None


class _Surface:
    """What a reply sends, as Teams' connector would see it."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.sent: list[dict] = []
        self.released = False
        self._refuse_after = refuse_after

    async def send(self, where: ConversationRef, activity: dict) -> str:
        if self._refuse_after is not None and len(self.sent) >= self._refuse_after:
            raise RuntimeError("403 ContentStreamNotAllowed")  # the user pressed Stop
        self.sent.append(activity)
        return "s1"

    async def post_answer(self, where: ConversationRef, activity: dict, request_id: str) -> str:
        self.sent.append(activity)
        return "final-1"

    def release_stream(self) -> None:
        self.released = True


def _info(activity: dict) -> dict | None:
    return next((e for e in activity["entities"] if e.get("type") == "streaminfo"), None)


WHERE = ConversationRef("teams", "t", "a:1")


async def test_a_stream_informs_then_streams_the_growing_text_then_ends_with_the_answer() -> None:
    surface = _Surface()
    reply = StreamingReply(surface, WHERE, interval_s=0)  # type: ignore[arg-type]
    for step in (Progress(status="Searching"), Progress(delta="PTO <b>"), Progress(delta="is")):
        await reply.progress(step)
    await reply.progress(Progress(status="late"))  # informative only before the text
    assert await reply.finish(AnswerMessage(_answer(), offer_private=False)) == "final-1"
    infos = [_info(a) for a in surface.sent]
    assert [i["streamType"] for i in infos] == ["informative", "streaming", "streaming", "final"]
    assert [i.get("streamSequence") for i in infos[:3]] == [1, 2, 3]
    assert all(i["streamId"] == "s1" for i in infos[1:])
    assert [a["text"] for a in surface.sent[1:3]] == ["PTO &lt;b&gt;", "PTO &lt;b&gt;is"]
    assert surface.released


async def test_a_restart_is_followed_not_unsaid_and_text_waits_for_the_interval() -> None:
    surface = _Surface()
    reply = StreamingReply(surface, WHERE, interval_s=0.2)  # type: ignore[arg-type]
    await reply.progress(Progress(delta="Draft one"))  # the first words at once
    await reply.progress(Progress(restart=True))
    await reply.progress(Progress(delta="Second"))
    assert len(surface.sent) == 1  # within the interval: held back...
    await asyncio.sleep(0.3)
    assert surface.sent[-1]["text"] == "Draft one" + REVISING + "Second"  # ...then shown
    await reply.finish(AnswerMessage(_answer(), offer_private=False))
    assert _info(surface.sent[-1])["streamType"] == "final"


async def test_a_refused_stream_still_delivers_the_final_answer_unstreamed() -> None:
    surface = _Surface(refuse_after=1)
    reply = StreamingReply(surface, WHERE, interval_s=0)  # type: ignore[arg-type]
    for step in (Progress(status="Searching"), Progress(delta="PTO "), Progress(delta="is")):
        await reply.progress(step)
    await reply.finish(AnswerMessage(_answer(), offer_private=False))
    assert [a["type"] for a in surface.sent] == ["typing", "message"]
    assert _info(surface.sent[-1]) is None  # an ordinary message: the stream was refused


class _Directory:
    async def resolve_identity(self, identity: PlatformIdentity) -> Any:
        return unknown()


class _Connector:
    def __init__(self, members: list[dict] | Exception) -> None:
        self._members = members
        self.calls = 0

    async def members(self) -> list[dict]:
        self.calls += 1
        if isinstance(self._members, Exception):
            raise self._members
        return self._members

    async def member(self, user_id: str) -> dict | None:
        raise LookupError("MemberNotFoundInConversation")


async def test_unknown_members_fail_closed_and_an_unreadable_roster_means_public() -> None:
    people = People(_Directory(), audience_ttl_s=60)  # type: ignore[arg-type]
    roster = _Connector(
        [{"id": "29:1a-B_c"}, {"id": "29:x", "aadObjectId": "X", "email": "Ada@X.example"}]
    )
    identity = TeamsIdentity(roster, Rosters(60))  # type: ignore[arg-type]
    group = ConversationRef("teams", "t", "19:c", extra={"conversation_type": "groupChat"})
    info = await identity.describe(group)
    assert info is not None and info.kind is ConversationKind.PRIVATE
    assert info.members == ("29:1a-B_c", "x")
    audience = await people.audience(identity, group, ("t",))
    assert audience.kind == "members" and "ada@x.example" in audience.members
    # One placeholder per unknown member, so the audience can never widen to `public` + them.
    assert "unknown-teams-member-29:1a-b_c@invalid" in audience.members
    assert roster.calls == 1  # the member list gave the emails: no lookup per member
    broken = TeamsIdentity(_Connector(OSError()), Rosters(60))  # type: ignore[arg-type]
    assert await broken.describe(ConversationRef("teams", "t", "19:d")) is None  # → public
    assert await broken.email_of(ChatUser("29:y", ("t",))) is None
    personal = await identity.describe(ConversationRef("teams", "t", "a:1"))
    assert personal is not None and personal.kind is ConversationKind.DIRECT


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
