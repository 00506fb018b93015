"""Slack's Reply on the Web API double: an answer streamed with chat.startStream/appendStream/
stopStream under the buffer rule, the final blocks, revisions, and the fallbacks when Slack
refuses a stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from adapters.slack.client import web_client
from adapters.slack.stream import REVISING, StreamConfig, Streaming
from adapters.slack.surface import SlackPoster, SlackSurface
from core.answering.notices import notice
from core.answering.types import Answer, Citation, Mode, NoticeCode
from core.conversation.messages import AnswerMessage, Progress
from core.conversation.ports import Reply
from core.conversation.types import ChatUser, ConversationRef, Turn
from tests.support.slack_api import SlackApiDouble

CHANNEL, THREAD = "C0GENERAL", "1700000000.000100"
TURN = Turn(
    ConversationRef("slack", "T0HARBOR1", CHANNEL, THREAD, message=THREAD),
    ChatUser("U03JKIM8QX", ("T0HARBOR1",)),
    "How long does a guest pass last?",
)
TEXT = "A guest pass lasts **24 hours** [1]. Ask at the front desk [2]."
CITES = [
    Citation(1, "c1", "it/wifi-guests.md", "Guest Wi-Fi", "it/wifi-guests.md", None),
    Citation(2, "c2", "handbook.md", "Handbook", "handbook.md", 3),
]


@pytest.fixture(scope="module")
def double() -> Iterator[SlackApiDouble]:
    with SlackApiDouble(bot_token="xoxb-test") as running:
        yield running


def surface(double: SlackApiDouble, **config: object) -> SlackSurface:
    double.reset()
    settings = {"interval_s": 0.0, "max_appends": 10, "status_delay_s": 0.0, **config}
    streaming = Streaming(StreamConfig(**settings))  # type: ignore[arg-type]
    return SlackSurface(web_client("xoxb-test", double.url), SlackPoster(0), streaming)


def answer(text: str = TEXT, *notices: NoticeCode) -> AnswerMessage:
    return AnswerMessage.shared(
        Answer("req-7", Mode.ANSWER, text, CITES, notices=[notice(n) for n in notices])
    )


async def stream_words(reply: Reply, text: str) -> None:
    for word in text.split(" "):
        await reply.progress(Progress(delta=word if word == text.split(" ")[0] else " " + word))


def methods(double: SlackApiDouble) -> list[str]:
    return [c["method"] for c in double.calls]


async def test_the_first_words_start_a_stream_and_the_answer_ends_it_with_its_blocks(
    double: SlackApiDouble,
) -> None:
    reply = await surface(double).reply(TURN)
    working = reply.message_id
    await reply.progress(Progress(status="Searching the documents…"))
    await asyncio.sleep(0.3)  # the status shows once the answer takes a moment
    await reply.progress(Progress(delta="A guest"))
    [start] = double.calls_to("chat.startStream")
    assert start["args"]["thread_ts"] == THREAD and start["args"]["channel"] == CHANNEL
    assert start["args"]["recipient_user_id"] == "U03JKIM8QX"
    assert start["args"]["recipient_team_id"] == "T0HARBOR1"
    assert [m["ts"] for m in double.messages()] != [working]  # the working message is gone
    await stream_words(reply, TEXT.removeprefix("A guest"))
    shown = await reply.finish(answer())

    [streamed] = double.streams()
    assert shown == streamed["ts"] and not streamed["streaming"]
    assert streamed["markdown"] == TEXT  # the streamed text is the checked answer
    [message] = double.messages()
    assert message["ts"] == streamed["ts"] and message["thread_ts"] == THREAD
    blocks = streamed["stop_blocks"]
    assert "Guest Wi-Fi" in json.dumps(blocks)  # citations
    [feedback] = [b for b in blocks if b["type"] == "context_actions"]
    [buttons] = feedback["elements"]
    assert buttons["type"] == "feedback_buttons"
    assert buttons["positive_button"]["value"] == "helpful:req-7"
    assert buttons["negative_button"]["value"] == "not_helpful:req-7"
    human = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert human == ["answerdesk_talk_to_human"]  # 👍/👎 are the feedback buttons now
    assert "req-7" in json.dumps(blocks[-1])  # the footer
    assert double.statuses(CHANNEL, THREAD) == ["Searching the documents…", ""]
    assert "chat.update" not in methods(double)


async def test_the_buffer_rule_bounds_the_calls_whatever_the_length(
    double: SlackApiDouble,
) -> None:
    config = StreamConfig(interval_s=0.0, max_appends=3, status_delay_s=0.0)
    reply = await surface(double, max_appends=3).reply(TURN)
    long = " ".join(f"word{i}" for i in range(200)) + " [1]."
    await stream_words(reply, long)
    await reply.finish(answer(long))
    calls = methods(double)
    assert calls.count("chat.startStream") == 1 and calls.count("chat.stopStream") == 1
    assert calls.count("chat.appendStream") == 3  # then the rest waits for the stop
    assert len(calls) <= config.max_calls_per_answer()
    [streamed] = double.streams()
    assert streamed["markdown"] == long and len(streamed["pieces"]) == 5

    # One append per interval: a fast model's words in one second make one append.
    reply = await surface(double, interval_s=60.0).reply(TURN)
    await stream_words(reply, long)
    await reply.finish(answer(long))
    assert methods(double).count("chat.appendStream") == 0
    assert double.streams()[0]["pieces"][0] == "word0"  # the first word went out at once


async def test_a_revised_answer_replaces_the_streamed_draft_and_says_so(
    double: SlackApiDouble,
) -> None:
    reply = await surface(double).reply(TURN)
    await stream_words(reply, "A guest pass lasts 24 hours [2].")
    final = answer("A guest pass lasts 24 hours [1].", NoticeCode.REVISED_AFTER_CHECK)
    shown = await reply.finish(final)
    [streamed] = double.streams()
    assert not streamed["streaming"] and shown == streamed["ts"]
    [update] = double.calls_to("chat.update")
    assert update["args"]["ts"] == streamed["ts"]
    [message] = double.messages()
    text = json.dumps(message["blocks"])
    assert "24 hours [1]" in text and "[2]" not in message["text"]
    assert "revised" in text  # the notice, visibly
    assert any(b["type"] == "context_actions" for b in message["blocks"])


async def test_a_restart_is_said_in_the_stream_and_the_final_answer_replaces_it(
    double: SlackApiDouble,
) -> None:
    reply = await surface(double).reply(TURN)
    await stream_words(reply, "Passes are free")
    await reply.progress(Progress(restart=True))
    await stream_words(reply, TEXT)
    await reply.finish(answer(TEXT, NoticeCode.REVISED_AFTER_CHECK))
    [streamed] = double.streams()
    assert REVISING.strip() in streamed["markdown"]
    [message] = double.messages()
    assert "Passes are free" not in json.dumps(message)  # only the checked answer remains


async def test_refused_streaming_falls_back_to_draft_updates_then_the_answer(
    double: SlackApiDouble,
) -> None:
    reply = await surface(double, interval_s=60.0).reply(TURN)
    working = reply.message_id
    double.fail("chat.startStream", "error:feature_not_enabled")
    await stream_words(reply, TEXT)
    drafts = double.calls_to("chat.update")
    assert len(drafts) == 1  # the first words at once, then one update per interval
    assert drafts[0]["args"]["ts"] == working
    assert "Writing" in json.dumps(drafts[0]["args"]["blocks"])
    assert await reply.finish(answer()) == working
    [message] = double.messages()
    assert message["ts"] == working and "Writing" not in json.dumps(message["blocks"])
    assert "24 hours" in message["text"]
    assert double.streams() == []


async def test_when_updates_are_refused_too_only_the_final_answer_shows(
    double: SlackApiDouble,
) -> None:
    reply = await surface(double).reply(TURN)
    double.fail("chat.startStream", "error:feature_not_enabled")
    double.fail("chat.update", "error:cant_update_message")
    await stream_words(reply, TEXT)
    assert len(double.calls_to("chat.update")) == 1  # tried once, then no more drafts
    assert await reply.finish(answer()) == reply.message_id
    assert "24 hours" in double.messages()[0]["text"]


async def test_a_stream_that_breaks_is_replaced_by_the_answer(double: SlackApiDouble) -> None:
    reply = await surface(double).reply(TURN)
    await reply.progress(Progress(delta="A guest"))
    double.fail("chat.appendStream", "error:message_not_in_streaming_state")
    await stream_words(reply, " pass lasts 24 hours [1].")
    assert len(double.calls_to("chat.appendStream")) == 1  # no more appends once broken
    shown = await reply.finish(answer())
    [streamed] = double.streams()
    assert shown == streamed["ts"]
    [message] = double.messages()
    assert "24 hours" in message["text"] and message["blocks"]


async def test_fast_answers_show_no_status_and_refused_statuses_are_not_asked_again(
    double: SlackApiDouble,
) -> None:
    slow_status = surface(double, status_delay_s=5.0)
    reply = await slow_status.reply(TURN)
    await reply.progress(Progress(status="Searching the documents…"))
    await reply.finish(answer())
    assert double.calls_to("assistant.threads.setStatus") == []

    refusing = surface(double)
    double.fail("assistant.threads.setStatus", "error:missing_scope")
    reply = await refusing.reply(TURN)
    await reply.progress(Progress(status="Searching the documents…"))
    await asyncio.sleep(0.2)
    await reply.finish(answer())
    reply = await refusing.reply(TURN)
    await reply.progress(Progress(status="Searching the documents…"))
    await asyncio.sleep(0.2)
    await reply.finish(answer())
    assert len(double.calls_to("assistant.threads.setStatus")) == 1

    # A status shown and an answer that ends by an update: the status is cleared.
    reply = await surface(double).reply(TURN)
    await reply.progress(Progress(status="Writing the answer…"))
    await asyncio.sleep(0.2)
    await reply.finish(answer())
    assert double.statuses(CHANNEL, THREAD) == ["Writing the answer…", ""]


async def test_without_streaming_the_answer_replaces_the_working_message_whole(
    double: SlackApiDouble,
) -> None:
    reply = await surface(double, enabled=False).reply(TURN)
    await stream_words(reply, TEXT)
    await reply.finish(answer())
    assert double.streams() == [] and len(double.calls_to("chat.update")) == 1
    blocks = double.messages()[0]["blocks"]
    ids = [e.get("action_id") for b in blocks for e in b.get("elements", [])]
    assert "answerdesk_feedback_up" in ids  # the classic buttons on a whole message
