"""The start-up warm-up of the model client: no request reaches a model, nothing raises."""

from __future__ import annotations

import sys

import tiktoken.registry

from adapters.llm.litellm_client import warm_up
from core.answering.model import TierSpec
from tests.support.model_server import ModelServer, unused_port


async def test_warm_up_calls_no_model_and_survives_a_dead_endpoint() -> None:
    with ModelServer() as server:
        tiers = (
            TierSpec(name="fast", model="openai/fast", api_base=server.url),
            TierSpec(
                name="dead", model="openai/dead", api_base=f"http://127.0.0.1:{unused_port()}"
            ),
        )
        await warm_up(tiers)
        assert server.requests_for("fast") == []
    # What the first real question would otherwise load on the event loop.
    assert "litellm._service_logger" in sys.modules
    assert "cl100k_base" in tiktoken.registry.ENCODINGS
