"""The answer flow with a progress sink (the streaming contract), through litellm to the
local model server streaming real server-sent events: the same answer as without a sink,
status steps and the model's text as it comes, and a final answer that says when it
revised what was streamed. Timeouts, Retry-After, breakers, escalation and fallbacks work
the same with streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.settings import Settings
from bot.wiring import Services, build_services
from core.answering.progress import SEARCHING, WRITING, Progress
from core.answering.types import Answer, Asker, Audience, Mode, Question
from tests.support.model_server import SECRET_THOUGHT, ModelServer

JORDAN = "jordan.kim@harborlight.example"
SIMPLE = "What portal address do I enter in GlobalProtect?"


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_server(server: ModelServer) -> None:
    server.reset()


def tier(name: str, url: str, **extra: object) -> dict:
    return {
        "name": name,
        "model": f"openai/{name}",
        "api_base": url,
        "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
        "timeout_s": 3,
        **extra,
    }


@pytest.fixture
async def make(
    demo_settings: Settings, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator:
    monkeypatch.setenv("ANSWERDESK_TEST_MODEL_KEY", "sk-test")
    built: list[Services] = []

    async def factory(tiers: list[dict] | None = None, **sections: object) -> Services:
        if tiers is None:
            tiers = [tier("fast", server.url), tier("strong", server.url)]
        sections.setdefault("cache", {"enabled": False})
        settings = Settings(
            data_dir=demo_settings.data_dir,
            models={"tiers": tiers, "deadline_s": 10, **sections.pop("models", {})},  # type: ignore[dict-item]
            **sections,
        )
        services = await build_services(settings)
        built.append(services)
        return services

    yield factory
    for services in built:
        await services.close()


class Recorder:
    """A progress sink that keeps every step."""

    def __init__(self) -> None:
        self.steps: list[Progress] = []

    async def __call__(self, step: Progress) -> None:
        self.steps.append(step)

    @property
    def statuses(self) -> list[str]:
        return [s.status for s in self.steps if s.status]

    @property
    def streamed(self) -> str:
        return "".join(s.delta for s in self.steps)

    @property
    def drafts(self) -> list[str]:
        """The text of each draft, split at restarts."""
        drafts = [""]
        for step in self.steps:
            if step.restart:
                drafts.append("")
            drafts[-1] += step.delta
        return drafts


def ask(text: str = SIMPLE) -> Question:
    return Question(text=text, asker=Asker(email=JORDAN), audience=Audience("dm"))


def codes(answer: Answer) -> list[str]:
    return [n.code for n in answer.notices]


async def test_a_streamed_answer_is_the_same_answer_with_its_progress(
    make, server: ModelServer
) -> None:
    services = await make()
    plain = await services.answers.answer(ask())
    sink = Recorder()
    streamed = await services.answers.answer(ask(), progress=sink)

    assert (streamed.mode, streamed.text, streamed.tier) == (plain.mode, plain.text, plain.tier)
    assert streamed.citations == plain.citations and codes(streamed) == codes(plain) == []
    assert sink.statuses == [SEARCHING, WRITING]
    assert sink.streamed == streamed.text  # nothing to revise: no notice
    assert sink.steps.index(Progress(status=WRITING)) < 2  # statuses before any text
    plain_call, streamed_call = server.requests_for("fast")
    assert not plain_call.get("stream")  # without a sink, nothing changes on the wire
    assert streamed_call["stream"] is True
    assert streamed_call["stream_options"] == {"include_usage": True}
    assert streamed.cost_usd == 0 and plain.cost_usd == 0  # local model: priced at zero

    await services.traces.flush()
    trace = await services.traces.get(streamed.request_id)
    progress = trace["progress"]
    assert progress["sink"] is True and progress["deltas"] > 3 and progress["restarts"] == 0
    assert 0 < progress["first_status_ms"] <= progress["first_delta_ms"] <= progress["total_ms"]
    [call] = trace["model_calls"]
    assert call["outcome"] == "ok" and call["first_token_ms"] > 0
    assert call["output_tokens"] > 0  # usage from the stream's last chunk
    plain_trace = await services.traces.get(plain.request_id)
    assert plain_trace["progress"]["first_delta_ms"] is None
    assert plain_trace["progress"]["first_status_ms"] is not None


async def test_reasoning_and_tool_calls_never_reach_the_stream(make, server: ModelServer) -> None:
    services = await make()
    server.script("fast", "think")
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    assert answer.mode == Mode.ANSWER and sink.streamed == answer.text
    for shown in (sink.streamed, answer.text):
        assert "private reasoning" not in shown and SECRET_THOUGHT not in shown
        assert "lookup" not in shown and "secret" not in shown


async def test_renumbered_markers_mark_the_final_answer_revised(make, server: ModelServer) -> None:
    services = await make()
    server.script("fast", "text:The portal is vpn.harborlight.example [2], see [1].")
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    assert sink.streamed == "The portal is vpn.harborlight.example [2], see [1]."
    assert answer.text == "The portal is vpn.harborlight.example [1], see [2]."
    assert codes(answer) == ["revised_after_check"]
    assert "revised" in answer.notices[0].message


async def test_an_uncited_draft_is_restarted_and_the_next_tier_answers(
    make, server: ModelServer
) -> None:
    services = await make()
    server.script("fast", "uncited")
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    assert answer.tier == "strong" and answer.citations
    uncited, cited = sink.drafts
    assert uncited.startswith("According to the sources") and "[" not in uncited
    assert cited == answer.text
    assert "revised_after_check" in codes(answer)


async def test_a_tier_cut_mid_stream_ends_in_the_fallback_answer_with_its_notice(
    make, server: ModelServer
) -> None:
    services = await make()
    server.script("fast", "cut:4")
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    cut, fallback = sink.drafts
    assert cut == "According to the sources,"  # four tokens, then the connection dropped
    assert fallback == answer.text and answer.tier == "strong"
    assert answer.mode == Mode.DEGRADED
    assert codes(answer) == ["fallback_tier", "revised_after_check"]
    await services.traces.flush()
    trace = await services.traces.get(answer.request_id)
    assert [c["outcome"] for c in trace["model_calls"]] == ["unavailable", "ok"]
    assert trace["progress"]["restarts"] == 1


async def test_every_tier_cut_mid_stream_ends_in_quoted_passages(make, server: ModelServer) -> None:
    services = await make()
    server.script("fast", "cut:2")
    server.script("strong", "cut:3")
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    assert answer.tier == "extractive" and answer.mode == Mode.DEGRADED
    assert codes(answer) == ["model_unavailable", "extractive_only", "revised_after_check"]
    assert len(sink.drafts) == 2 and sink.drafts[-1] != answer.text


async def test_the_tier_timeout_bounds_the_whole_stream(make, server: ModelServer) -> None:
    """A model that keeps sending, too slowly: the timeout is the call's, not each read's."""
    services = await make([tier("fast", server.url, timeout_s=1), tier("strong", server.url)])
    server.set_pacing("fast", first_token_ms=0, tokens_per_s=4)  # ~4 s for the answer
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    assert answer.tier == "strong" and "fallback_tier" in codes(answer)
    assert sink.drafts[0] and sink.drafts[0] != sink.drafts[-1]  # some text, then a restart
    await services.traces.flush()
    trace = await services.traces.get(answer.request_id)
    assert trace["model_calls"][0]["outcome"] == "timeout"


async def test_retry_after_then_the_same_tier_streams(make, server: ModelServer) -> None:
    services = await make()
    server.script("fast", "429:1")
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    assert answer.tier == "fast" and answer.mode == Mode.ANSWER
    assert sink.drafts == [answer.text]  # refused before any text: nothing to restart
    assert codes(answer) == []
    assert len(server.requests_for("fast")) == 2


async def test_a_tier_cut_mid_stream_counts_for_its_breaker(make, server: ModelServer) -> None:
    services = await make(
        [tier("fast", server.url), tier("strong", server.url)],
        models={"breaker": {"failure_threshold": 1, "cooldown_s": 60}},
    )
    server.script("fast", "cut:2")
    await services.answers.answer(ask(), progress=Recorder())
    sink = Recorder()
    answer = await services.answers.answer(ask(), progress=sink)
    assert answer.tier == "strong" and len(server.requests_for("fast")) == 1  # circuit open
    assert sink.drafts == [answer.text]


async def test_no_text_is_streamed_for_cache_hits_extractive_clarify_handoff_refusals(
    make, server: ModelServer
) -> None:
    cached = await make(cache={"enabled": True})
    await cached.answers.answer(ask())
    sink = Recorder()
    hit = await cached.answers.answer(ask(), progress=sink)
    assert hit.cache["status"] == "hit" and sink.streamed == "" and codes(hit) == []
    assert sink.statuses == [SEARCHING]

    extractive = await make([])  # no model tier
    for question, mode in (
        (SIMPLE, Mode.ANSWER),
        ("What about the thing?", Mode.CLARIFY),
        ("I want to talk to a human", Mode.HANDOFF),
        ("   ", Mode.REFUSED),
    ):
        sink = Recorder()
        answer = await extractive.answers.answer(ask(question), progress=sink)
        assert answer.mode == mode, question
        assert sink.streamed == "" and not any(s.restart for s in sink.steps)
        assert "revised_after_check" not in codes(answer)
