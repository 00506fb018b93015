"""Slack's surface port on the Web API double: what each conversation-layer message becomes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from adapters.slack.client import web_client
from adapters.slack.surface import SlackPoster, SlackSurface
from core.answering.types import Answer, Mode
from core.conversation.messages import AnswerMessage, Progress, TextMessage
from core.conversation.types import ChatUser, ConversationRef, Turn
from tests.support.slack_api import SlackApiDouble

WHERE = ConversationRef("slack", "T0HARBOR1", "C0GENERAL", "1700000000.000100")


@pytest.fixture(scope="module")
def double() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-test") as running:
        yield running


@pytest.fixture
def surface(double: SlackApiDouble) -> SlackSurface:
    double.reset()
    return SlackSurface(web_client("xoxb-test", double.url), SlackPoster(interval_s=0))


async def test_without_streaming_the_working_message_shows_status_steps_then_the_answer(
    surface: SlackSurface, double: SlackApiDouble
) -> None:
    reply = await surface.reply(Turn(WHERE, ChatUser("U1", ("T0HARBOR1",)), "How long?"))
    working = reply.message_id
    assert working is not None
    await reply.progress(Progress(status="Searching 3 collections…"))
    await reply.progress(Progress(delta="The guest pass"))  # a draft is not shown
    [message] = double.messages()
    assert message["text"] == "Searching 3 collections…"
    assert len(double.calls_to("chat.update")) == 1

    answer = Answer("req1", Mode.ANSWER, "A guest pass lasts 24 hours [1].")
    assert await reply.finish(AnswerMessage.shared(answer)) == working
    [message] = double.messages()
    assert message["thread_ts"] == WHERE.thread and "24 hours" in message["text"]
    buttons = [e.get("action_id") for b in message["blocks"] for e in b.get("elements", [])]
    assert "answerdesk_send_private" not in buttons and "answerdesk_feedback_down" in buttons


async def test_text_messages_and_the_offer_of_a_person(
    surface: SlackSurface, double: SlackApiDouble
) -> None:
    await surface.post(WHERE, TextMessage("See [AD-7](https://desk.example/t/AD-7).", "req2"))
    await surface.post(WHERE, TextMessage("Would a person help?", "req2", offer_human=True))
    notice, offer = double.calls_to("chat.postMessage")
    assert "<https://desk.example/t/AD-7|AD-7>" in json.dumps(notice["args"]["blocks"])
    assert "req2" in json.dumps(notice["args"]["blocks"][-1])  # the footer
    assert notice["args"]["unfurl_links"] is False
    [button] = offer["args"]["blocks"][1]["elements"]
    assert (button["action_id"], button["value"]) == ("answerdesk_talk_to_human", "req2")
    assert offer["args"]["text"] == "Would a person help?"
    assert {c["args"]["thread_ts"] for c in (notice, offer)} == {WHERE.thread}


async def test_a_private_message_goes_to_one_person_and_a_refusal_is_reported(
    surface: SlackSurface, double: SlackApiDouble
) -> None:
    answer = AnswerMessage.private(Answer("req3", Mode.ANSWER, "Your band is L3."))
    assert await surface.post_privately(WHERE, "U02PRAMAN7", answer)
    [ephemeral] = double.ephemerals()
    assert (ephemeral["user"], ephemeral["thread_ts"]) == ("U02PRAMAN7", WHERE.thread)
    double.fail("chat.postEphemeral", "error:user_not_in_channel")
    assert not await surface.post_privately(WHERE, "U02PRAMAN7", answer)
