"""The pre-launch ACL self-test: restricted probe documents must stay invisible to everyone
outside their group, through retrieval, the semantic cache, the answer and a channel.

Probe documents are ingested into a scratch namespace: their own Chroma collections
(`preflight_<run>` and `preflight_<run>_cache`) in an in-memory Chroma of this process, which
no other process or replica can see and which leaves no file behind (Chroma does not remove
a deleted collection's files from disk), document ids under `__preflight__/<run>/`, readable
only by `group:answerdesk-preflight-<run>` (set by an ACL-file rule, the same machinery
real documents go through). The probe asks as a member of that group first (the
probe must be findable, and its answer is cached), then as an identity outside it: through
the real retriever and the scratch one, through the answer flow with the cache, and as the
member in a channel the outsider reads. Anything of the probe reaching the outsider is a
leak. Nothing is kept: the run cleans up in `finally`, and what a run killed outright left
in the database (documents, passages, cache rows, the ACL set) is swept by the next run or
the next service start (`sweep`).
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.db.cache_store import ChromaSqlCacheStore
from adapters.db.preflight import (
    PROBE_GROUP,
    PROBE_RELEASE,
    PROBE_ROOT,
    PreflightStore,
    drop_probe_rows,
    probe_documents,
)
from adapters.vectorstore.chroma import ChromaVectorIndex, scratch_client
from bot.commands.eval import DryRunTickets
from bot.wiring import Services
from core.acl import policy_from_mapping
from core.answering.model import NoModelClient
from core.answering.service import AnswerService
from core.answering.tracing import NullTraceSink
from core.answering.types import Answer, Asker, Audience, Question
from core.cache import CacheConfig, SemanticCache
from core.directory import Resolved
from core.ingest.service import IngestConfig, Ingestor
from core.principals import principals_for_user
from core.retrieval import Retriever

QUESTION = "What is the access code of the Halvorsen vault?"


@dataclass
class _Probe:
    run: str
    secret: str = field(default_factory=lambda: f"HV-{secrets.token_hex(3).upper()}")

    @property
    def group(self) -> str:
        return f"{PROBE_GROUP}{self.run}"

    @property
    def insider(self) -> str:
        return f"preflight-member-{self.run}@answerdesk.invalid"

    @property
    def outsider(self) -> str:
        return f"preflight-outsider-{self.run}@answerdesk.invalid"

    def documents(self) -> dict[str, str]:
        root = f"{PROBE_ROOT}/{self.run}"
        return {
            "vault.md": f"---\nid: {root}/vault\n---\n# The Halvorsen vault\n\n"
            f"The access code of the Halvorsen vault is {self.secret}. The night auditor "
            "opens the Halvorsen vault at 02:00 on Tuesdays and logs every opening.\n",
            "vault-keys.md": f"---\nid: {root}/vault-keys\n---\n# Halvorsen vault keys\n\n"
            "Spare keys to the Halvorsen vault are held by the night auditor in a sealed "
            f"envelope marked {self.secret}.\n",
        }

    def leaked(self, answer: Answer) -> str | None:
        """What of the probe an answer shows, if anything."""
        cited = [c.document_id for c in answer.citations if c.document_id.startswith(PROBE_ROOT)]
        if cited:
            return f"cites {', '.join(sorted(set(cited)))}"
        for needle in (self.secret, "night auditor"):
            if needle.lower() in answer.text.lower():
                return f"quotes the probe ({needle!r})"
        return None


class _ProbeDirectory:
    """The directory, plus the probe's member and outsider (nothing is written to it)."""

    def __init__(self, directory: Any, people: dict[str, frozenset[str]]) -> None:
        self._directory = directory
        self._people = people

    async def resolve_email(self, email: str) -> Resolved:
        if email in self._people:
            return Resolved(email, True, self._people[email])
        return await self._directory.resolve_email(email)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._directory, name)


def collections(run: str) -> tuple[str, str]:
    return f"preflight_{run}", f"preflight_{run}_cache"


async def acl_self_test(services: Services, run: str) -> dict[str, Any]:
    """The checklist item: {name, passed, reason, action, leaks}."""
    probe = _Probe(run)
    try:
        leaks, trouble = await _probe(services, probe)
    except Exception as exc:  # an item that could not run fails; it never stops the list
        leaks, trouble = [], f"the probe broke off ({type(exc).__name__})"
    finally:
        await cleanup(services, run)
    if trouble:
        return _item(False, f"inconclusive: {trouble}", "check the index and the answer flow")
    if leaks:
        return {
            **_item(
                False,
                f"LEAK: {leaks[0]}" + (f" (and {len(leaks) - 1} more)" if len(leaks) > 1 else ""),
                "do not launch: find why a document restricted to one group reached "
                "someone outside it (ACL file rules, the directory, the permission checks)",
            ),
            "leaks": leaks,
        }
    return _item(
        True,
        "an outsider saw nothing of the group-only probe through retrieval, the cache, "
        "the answer or a channel",
        "",
    )


async def _probe(services: Services, probe: _Probe) -> tuple[list[str], str | None]:
    client = scratch_client()
    index_name, cache_name = collections(probe.run)
    index = ChromaVectorIndex(client, index_name)
    policy = policy_from_mapping(
        {"default": [probe.group], "rules": [{"match": "**", "allow": [probe.group]}]}
    )
    with tempfile.TemporaryDirectory(prefix="answerdesk-preflight-") as folder:
        root = Path(folder)
        for name, text in probe.documents().items():
            (root / name).write_text(text, encoding="utf-8")
        report = await Ingestor(services.catalog, index, services.embedder, IngestConfig()).ingest(
            [root], policy
        )
    if report.failed or len(report.added) != len(probe.documents()):
        return [], f"the probe documents were not ingested ({report.failed})"
    answers, scratch = await _answer_service(services, probe, index, client, cache_name)
    member = Asker(email=probe.insider, platform="preflight")
    sanity = await answers.answer(Question(QUESTION, member, platform="preflight"))
    if not any(c.document_id.startswith(PROBE_ROOT) for c in sanity.citations):
        return [], "the probe's own group does not find it, so its absence proves nothing"
    if not sanity.trace.get("cache_store"):
        return [], "the member's answer was not cached, so the cache cannot be tested"

    leaks = []
    outsider = principals_for_user(probe.outsider, [])
    for name, retriever in (("retrieval", services.retriever), ("scratch retrieval", scratch)):
        result = await retriever.search(QUESTION, outsider)
        shown = sorted(
            {h.chunk.document_id for h in result.hits if h.chunk.document_id.startswith(PROBE_ROOT)}
        )
        if shown:
            leaks.append(f"{name} gave an outsider {', '.join(shown)}")
    asks = (
        ("the answer to an outsider", Asker(email=probe.outsider, platform="preflight"), "dm"),
        ("a channel answer", member, f"members:{probe.insider},{probe.outsider}"),
        ("a public-channel answer", member, "public"),
    )
    for what, asker, audience in asks:
        answer = await answers.answer(
            Question(QUESTION, asker, audience=Audience.parse(audience), platform="preflight")
        )
        if (answer.cache or {}).get("status") == "hit":
            leaks.append(f"the cache served the member's answer as {what}")
        shown = probe.leaked(answer)
        if shown:
            leaks.append(f"{what} {shown}")
    return leaks, None


async def _answer_service(
    services: Services, probe: _Probe, index: ChromaVectorIndex, client: Any, cache_name: str
) -> tuple[AnswerService, Retriever]:
    """The active release's answer flow over the scratch index and cache, quoting instead
    of calling a model (no probe text leaves the machine), tracing and remembering nothing."""
    active = services.answers.active.config
    config = dataclasses.replace(active, tiers=(), release=f"{PROBE_RELEASE}{probe.run}")
    retriever = Retriever(index, services.catalog, services.embedder, services.retriever.config)
    store = ChromaSqlCacheStore(client, cache_name, services.engine)
    c = services.settings.cache
    cache = SemanticCache(
        store, CacheConfig(True, c.similarity_threshold, c.ttl_s, c.candidates), config.release
    )
    people = {
        probe.insider: principals_for_user(probe.insider, [probe.group.removeprefix("group:")]),
        probe.outsider: principals_for_user(probe.outsider, []),
    }
    service = AnswerService(
        retriever,
        _ProbeDirectory(services.directory, people),
        NoModelClient(),
        NullTraceSink(),
        config,
        cache=cache,
        tickets=DryRunTickets(),
        versions=services.catalog.document_versions,
    )
    return service, retriever


async def cleanup(services: Services, run: str) -> None:
    """Everything of one run: its documents (and their passages), its in-memory
    collections, cache rows and ACL set."""
    documents = [d for d in await probe_documents(services.engine) if _run_of(d) == run]
    await services.catalog.delete_documents(documents)
    client = scratch_client()
    for name in collections(run):
        if name in _collection_names(client):
            client.delete_collection(name)
    await drop_probe_rows(services.engine, lambda other: other == run)


async def sweep(services: Services) -> dict[str, int]:
    """What killed runs left in the database (every run not running now). Their
    collections were in memory, gone with the process."""
    running = await PreflightStore(services.engine).running()
    documents = [d for d in await probe_documents(services.engine) if _run_of(d) not in running]
    await services.catalog.delete_documents(documents)
    rows = await drop_probe_rows(services.engine, lambda other: other not in running)
    return {"documents": len(documents), **rows}


def _collection_names(client: Any) -> list[str]:
    return [getattr(c, "name", c) for c in client.list_collections()]


def _run_of(document_id: str) -> str:
    return document_id.removeprefix(f"{PROBE_ROOT}/").split("/", 1)[0]


def _item(passed: bool, reason: str, action: str) -> dict[str, Any]:
    return {"name": "acl_self_test", "passed": passed, "reason": reason, "action": action}
