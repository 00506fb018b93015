"""Property: the semantic cache never serves an answer to a requester who may not read every
chunk that went into its context, and never after one of those documents changed.

Hypothesis draws document ACLs, users' groups, audiences and a sequence of questions and
document edits (content or ACL). Real MiniLM (memoised), Chroma and SQLite.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.settings import Settings
from bot.wiring import build_services
from core.acl import AclPolicy, AclRule, glob_to_regex
from core.answering.config import AnswerConfig
from core.answering.gate import GateConfig
from core.answering.model import NoModelClient
from core.answering.service import AnswerService
from core.answering.tracing import NullTraceSink
from core.answering.types import Asker, Audience, Question
from core.cache import CacheConfig, SemanticCache
from core.directory import DirectoryEntry
from core.ingest.service import Ingestor
from core.principals import PUBLIC, Access, principals_for_user
from core.retrieval import RetrievalConfig, Retriever
from tests.integration.test_retrieval_permissions import TOPICS, MemoEmbedder

GROUPS = ["hr", "finance", "it"]
PRINCIPALS = [PUBLIC, *(f"group:{g}" for g in GROUPS)]
USERS = [f"u{n}@example.com" for n in range(4)]
QUESTIONS = [
    "When does the office close?",
    "when does the office close",
    "How much does a level four engineer earn?",
    "how much does a level four engineer earn",
    "What is the hotel limit?",
    "what is the hotel limit",
]
DOCS = len(TOPICS)

acl = st.frozensets(st.sampled_from(PRINCIPALS), min_size=1, max_size=2)
audience = st.one_of(
    st.just("dm"),
    st.just("public"),
    st.lists(st.sampled_from(USERS), min_size=1, max_size=3, unique=True).map(
        lambda m: "members:" + ",".join(m)
    ),
)
ask_step = st.tuples(st.just("ask"), st.sampled_from(USERS), st.sampled_from(QUESTIONS), audience)
edit_step = st.tuples(st.just("edit"), st.integers(0, DOCS - 1), st.booleans(), acl)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    doc_acls=st.lists(acl, min_size=DOCS, max_size=DOCS),
    user_groups=st.lists(
        st.frozensets(st.sampled_from(GROUPS), max_size=2), min_size=4, max_size=4
    ),
    steps=st.lists(st.one_of(ask_step, ask_step, edit_step), min_size=6, max_size=12),
)
def test_cache_never_leaks_and_never_serves_changed_documents(
    doc_acls: list[frozenset[str]], user_groups: list[frozenset[str]], steps: list[tuple]
) -> None:
    asyncio.run(_run(doc_acls, user_groups, steps))


async def _run(
    doc_acls: list[frozenset[str]], user_groups: list[frozenset[str]], steps: list[tuple]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        services = await build_services(Settings(data_dir=Path(tmp) / "var"))
        try:
            await services.directory.import_entries(
                [
                    DirectoryEntry(u, u, tuple(sorted(g)))
                    for u, g in zip(USERS, user_groups, strict=True)
                ],
                replace=True,
            )
            principals = {
                u: principals_for_user(u, g) for u, g in zip(USERS, user_groups, strict=True)
            }
            acls = list(doc_acls)
            versions = [0] * DOCS
            ingestor = Ingestor(services.catalog, services.index, MemoEmbedder())
            retriever = Retriever(
                services.index, services.catalog, MemoEmbedder(), RetrievalConfig(view_refresh_s=0)
            )
            answers = AnswerService(
                retriever,
                services.directory,
                NoModelClient(),
                NullTraceSink(),
                AnswerConfig(gate=GateConfig(min_score=0.0, confident_score=0.0)),
                cache=SemanticCache(
                    services.cache_store, CacheConfig(similarity_threshold=0.8), "r1"
                ),
                versions=services.catalog.document_versions,
            )

            async def ingest() -> None:
                for n in range(DOCS):
                    (root / f"doc{n:02d}.md").write_text(
                        f"# Topic {n}\n\n{TOPICS[n]}\n\nRevision {versions[n]}.\n"
                    )
                rules = tuple(
                    AclRule(f"doc{n:02d}.md", acls[n], glob_to_regex(f"doc{n:02d}.md"))
                    for n in range(DOCS)
                )
                await ingestor.ingest([root], AclPolicy(frozenset({PUBLIC}), rules))

            await ingest()
            made: dict[str, tuple[set[int], list[int], list[frozenset[str]]]] = {}
            for step in steps:
                if step[0] == "edit":
                    _, doc, content, new_acl = step
                    if content:
                        versions[doc] += 1
                    else:
                        acls[doc] = new_acl
                    await ingest()
                    continue
                _, user, text, aud = step
                question = Question(
                    text=text, asker=Asker(email=user), audience=Audience.parse(aud)
                )
                answer = await answers.answer(question)
                context = {
                    int(hit["document_id"][3:5])
                    for hit in answer.trace["stages"].get("retrieval", {}).get("hits", [])
                }
                made[answer.request_id] = (context, list(versions), list(acls))
                event(f"cache {answer.cache['status']}")
                if answer.cache["status"] != "hit":
                    continue
                original = answer.cache["original_request_id"]
                used, then_versions, then_acls = made[original]
                readers = [principals[user]]
                if aud == "public":
                    readers.append(frozenset({PUBLIC}))
                elif aud.startswith("members:"):
                    readers.extend(principals[m] for m in aud[len("members:") :].split(","))
                access = Access(*readers)
                for doc in used:
                    assert access.allows(acls[doc]), (doc, acls[doc], readers)
                    assert versions[doc] == then_versions[doc], f"doc{doc} changed since caching"
                    assert acls[doc] == then_acls[doc], f"doc{doc} ACL changed since caching"
                for citation in answer.citations:
                    assert access.allows(acls[int(citation.document_id[3:5])])
        finally:
            await services.close()
