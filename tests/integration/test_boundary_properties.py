"""Property: no model request ever contains a chunk whose classification the tier does not
allow. Observed at the network boundary: the OpenAI-compatible server double records every
request litellm sends, and each source in it is traced back to its document.

Hypothesis draws each document's classification, the tiers and what each may receive, how
each tier behaves (answers, fails, answers uncited so the flow escalates, says it cannot),
a cost cap, and the questions. Real MiniLM (memoised), Chroma, SQLite and litellm.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.llm.litellm_client import LiteLLMClient
from bot.settings import Settings
from bot.wiring import build_services
from core.acl import AclPolicy, AclRule, glob_to_regex
from core.answering.config import AnswerConfig
from core.answering.gate import GateConfig
from core.answering.model import TierSpec
from core.answering.service import AnswerService
from core.answering.tracing import NullTraceSink
from core.answering.types import Asker, Question
from core.classification import LEVELS
from core.ingest.service import Ingestor
from core.principals import PUBLIC
from core.retrieval import RetrievalConfig, Retriever
from tests.integration.test_retrieval_permissions import TOPICS, MemoEmbedder
from tests.support.model_server import ModelServer, find_sources

QUESTIONS = [
    "When does the office close?",
    "How much does a level four engineer earn?",
    "What is the hotel limit and how do I set up the VPN?",
    "Compare parental leave with the dental plan: which covers more, and why?",
]
BEHAVIOURS = ["answer", "answer", "500", "uncited", "cannot"]
CHECKED = {"sources": 0, "requests": 0}

level = st.sampled_from(LEVELS)
allowed = st.frozensets(level, min_size=1)
tiers = st.lists(st.tuples(allowed, st.sampled_from(BEHAVIOURS)), min_size=1, max_size=3)


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


def test_no_model_request_carries_a_classification_its_tier_may_not_receive(
    server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        levels=st.lists(level, min_size=len(TOPICS), max_size=len(TOPICS)),
        tier_draws=tiers,
        cap=st.sampled_from([None, 0.002]),
        questions=st.lists(st.sampled_from(QUESTIONS), min_size=1, max_size=3),
    )
    def check(
        levels: list[str],
        tier_draws: list[tuple[frozenset[str], str]],
        cap: float | None,
        questions: list[str],
    ) -> None:
        server.reset()
        asyncio.run(_run(server, levels, tier_draws, cap, questions))

    check()
    # The property was exercised, not vacuously true: requests were sent and traced back.
    assert CHECKED["requests"] > 0 and CHECKED["sources"] > 0, CHECKED


async def _run(
    server: ModelServer,
    levels: list[str],
    tier_draws: list[tuple[frozenset[str], str]],
    cap: float | None,
    questions: list[str],
) -> None:
    specs = []
    for n, (may_receive, behaviour) in enumerate(tier_draws):
        server.set_default(f"t{n}", behaviour)
        specs.append(
            TierSpec(
                name=f"t{n}",
                model=f"openai/t{n}",
                api_base=server.url,
                api_key="test-key",
                timeout_s=5,
                max_output_tokens=100,
                input_cost_per_token=1e-7 * (n + 1),
                output_cost_per_token=4e-7 * (n + 1),
                allowed_classifications=may_receive,
            )
        )
    may = {spec.name: spec.allowed_classifications for spec in specs}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        for n, topic in enumerate(TOPICS):
            (root / f"doc{n:02d}.md").write_text(f"# Topic {n}\n\n{topic}\n")
        services = await build_services(Settings(data_dir=Path(tmp) / "var"))
        try:
            rules = tuple(
                AclRule(f"doc{n:02d}.md", None, glob_to_regex(f"doc{n:02d}.md"), levels[n])
                for n in range(len(TOPICS))
            )
            ingestor = Ingestor(services.catalog, services.index, MemoEmbedder())
            report = await ingestor.ingest([root], AclPolicy(frozenset({PUBLIC}), rules))
            assert not report.failed
            answers = AnswerService(
                Retriever(services.index, services.catalog, MemoEmbedder(), RetrievalConfig()),
                services.directory,
                LiteLLMClient(),
                NullTraceSink(),
                AnswerConfig(
                    tiers=tuple(specs),
                    max_cost_per_request_usd=cap,
                    deadline_s=10,
                    gate=GateConfig(min_score=0.0, confident_score=0.0),
                ),
            )
            for text in questions:
                answer = await answers.answer(Question(text, Asker("someone@example.com")))
                event(f"tier {answer.tier}")
                if any(n.code == "data_boundary" for n in answer.notices):
                    event("data_boundary notice")
        finally:
            await services.close()
    for request in server.requests:
        tier = request["_model"]
        user = request["messages"][-1]["content"]
        sources = find_sources(user)
        for _, body in sources:
            [doc] = [n for n, topic in enumerate(TOPICS) if topic in body]
            assert levels[doc] in may[tier], (tier, sorted(may[tier]), doc, levels[doc])
            CHECKED["sources"] += 1
        CHECKED["requests"] += 1
