"""The model client against the OpenAI-compatible double: OpenAI-format models go straight
over the wire (one shared HTTP session), models whose parameters litellm translates go
through litellm; both classify failures the same way and pass on only the answer's text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.llm import openai_wire
from adapters.llm.litellm_client import LiteLLMClient
from core.answering.model import ModelError, TierSpec
from tests.support.model_server import SECRET_THOUGHT, ModelServer, unused_port

MESSAGES = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": "How long?\n[1] Guest Wi-Fi passes last 24 hours."},
]
KEY = "sk-do-not-show-this"


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


@pytest.fixture
def model(server: ModelServer) -> ModelServer:
    server.reset()
    return server


@pytest.fixture(autouse=True)
async def session() -> AsyncIterator[None]:
    """The shared session, held and released as a service holds it."""
    openai_wire.retain()
    yield
    await openai_wire.release()


def tier(server: ModelServer, name: str = "fast", **extra: object) -> TierSpec:
    return TierSpec(name=name, model=f"openai/{name}", api_base=server.url, api_key=KEY, **extra)


@pytest.mark.parametrize("name", ["fast", "o3-mini"])
async def test_whole_and_streamed_answers_with_usage(model: ModelServer, name: str) -> None:
    client = LiteLLMClient()
    whole = await client.complete(tier(model, name), MESSAGES, 10)
    deltas: list[str] = []
    streamed = await client.complete(tier(model, name), MESSAGES, 10, deltas.append)
    assert whole.text == streamed.text == "".join(deltas)
    assert "24 hours [1]" in whole.text
    assert whole.input_tokens > 0 and streamed.output_tokens > 0
    assert streamed.first_token_ms is not None
    sent = model.requests_for(name)
    if name == "fast":  # straight through: the parameters as given
        assert all(r["max_tokens"] == 500 and r["temperature"] == 0 for r in sent)
    else:  # litellm translated them for an o-series model
        assert all("max_completion_tokens" in r and "max_tokens" not in r for r in sent)


@pytest.mark.parametrize("name", ["fast", "o3-mini"])
async def test_failures_are_classified_and_never_show_the_key(
    model: ModelServer, name: str
) -> None:
    client = LiteLLMClient()
    model.script(name, "429:2", "500", "hang:5", "cut:3", "bad")
    failures = []
    for on_text in (None, None, None, lambda _t: None, None):
        with pytest.raises(ModelError) as caught:
            await client.complete(tier(model, name), MESSAGES, 1, on_text)
        assert KEY not in str(caught.value)
        failures.append(caught.value)
    assert [f.kind for f in failures] == [
        "ratelimited",
        "unavailable",
        "timeout",
        "unavailable",
        "unavailable",
    ]
    assert failures[0].retry_after_s == 2


async def test_a_down_endpoint_is_unavailable() -> None:
    down = TierSpec(
        name="fast", model="openai/fast", api_base=f"http://127.0.0.1:{unused_port()}/v1"
    )
    with pytest.raises(ModelError) as caught:
        await LiteLLMClient().complete(down, MESSAGES, 2)
    assert caught.value.kind == "unavailable"


async def test_reasoning_and_tool_calls_are_never_passed_on(model: ModelServer) -> None:
    model.set_default("fast", "think")
    deltas: list[str] = []
    reply = await LiteLLMClient().complete(tier(model), MESSAGES, 10, deltas.append)
    assert SECRET_THOUGHT not in reply.text and SECRET_THOUGHT not in "".join(deltas)
    assert "24 hours [1]" in reply.text


async def test_one_session_for_every_endpoint_and_key(model: ModelServer) -> None:
    client = LiteLLMClient()
    for _ in range(3):
        await client.complete(tier(model), MESSAGES, 10)
    other = TierSpec(name="x", model="openai/fast", api_base=model.url, api_key="sk-other")
    await LiteLLMClient().complete(other, MESSAGES, 10)
    assert list(openai_wire._SESSIONS.values()) == [openai_wire.session()]
    assert {r["_headers"]["authorization"] for r in model.requests_for("fast")} == {
        f"Bearer {KEY}",
        "Bearer sk-other",
    }
