"""The progress relay of the answer flow: order, joined deltas, a slow or failing sink, the
revised notice."""

from __future__ import annotations

import asyncio

from core.answering.progress import RETRYING, Progress, ProgressReporter
from core.answering.types import Answer, Mode


async def test_steps_arrive_in_order_and_deltas_join_while_the_sink_is_busy() -> None:
    received: list[Progress] = []

    async def slow_sink(step: Progress) -> None:
        received.append(step)
        await asyncio.sleep(0.05)

    reporter = ProgressReporter(slow_sink)
    reporter.status("Searching")
    for word in ("The ", "pass ", "lasts ", "a ", "day."):
        reporter.delta(word)  # never waits for the sink
    reporter.status("Checking")
    reporter.delta("")  # empty text is no step
    await reporter.drain()
    assert received[0] == Progress(status="Searching")
    assert received[-1] == Progress(status="Checking")
    texts = [step.delta for step in received[1:-1]]
    assert "".join(texts) == "The pass lasts a day."
    assert len(texts) < 5  # queued while the sink was busy: sent together
    assert reporter.deltas == 5 and reporter.draft == "The pass lasts a day."
    assert reporter.first_status_ms is not None and reporter.first_delta_ms is not None
    assert reporter.first_status_ms <= reporter.first_delta_ms


async def test_a_failing_sink_gets_no_more_steps_and_changes_nothing() -> None:
    calls: list[Progress] = []

    async def broken(step: Progress) -> None:
        calls.append(step)
        raise RuntimeError("the platform is down")

    reporter = ProgressReporter(broken)
    reporter.status("Searching")
    await asyncio.sleep(0)
    reporter.delta("text")
    await reporter.drain()
    assert calls == [Progress(status="Searching")]
    assert reporter.draft == "text"  # still tracked: the answer decides on its notice


async def test_a_new_attempt_restarts_a_shown_draft_and_the_answer_says_it_was_revised() -> None:
    received: list[Progress] = []

    async def sink(step: Progress) -> None:
        received.append(step)

    reporter = ProgressReporter(sink)
    reporter.attempt(retrying=False)  # the first attempt: nothing to say
    reporter.delta("Uncited draft.")
    reporter.attempt(retrying=True)  # escalated: the draft is void
    reporter.attempt(retrying=True)  # failed before any text: a status, no restart
    reporter.delta("Cited [1].")
    await reporter.drain()
    assert received == [
        Progress(delta="Uncited draft."),
        Progress(restart=True),
        Progress(status=RETRYING),
        Progress(delta="Cited [1]."),
    ]
    answer = Answer("r", Mode.ANSWER, "Cited [1].")
    reporter.finish(answer)
    assert [n.code for n in answer.notices] == ["revised_after_check"]  # a draft was replaced


async def test_the_revised_notice_only_when_the_final_text_differs_from_the_stream() -> None:
    async def sink(step: Progress) -> None:
        return None

    same = ProgressReporter(sink)
    same.delta("A pass lasts 24 hours [1].\n")
    answer = Answer("r", Mode.ANSWER, "A pass lasts 24 hours [1].")
    same.finish(answer)
    assert answer.notices == []

    renumbered = ProgressReporter(sink)
    renumbered.delta("A pass lasts 24 hours [2].")
    answer = Answer("r", Mode.ANSWER, "A pass lasts 24 hours [1].")
    renumbered.finish(answer)
    assert [n.code for n in answer.notices] == ["revised_after_check"]

    silent = ProgressReporter(None)  # no sink, no deltas: never a notice
    answer = Answer("r", Mode.ANSWER, "x")
    silent.finish(answer)
    assert answer.notices == [] and not silent.streaming
    await silent.drain()
    await same.drain()
    await renumbered.drain()


async def test_a_sink_that_hangs_does_not_hold_the_answer_forever(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("core.answering.progress.DRAIN_TIMEOUT_S", 0.2)

    async def hangs(step: Progress) -> None:
        await asyncio.sleep(30)

    reporter = ProgressReporter(hangs)
    reporter.status("Searching")
    await asyncio.wait_for(reporter.drain(), 5)
