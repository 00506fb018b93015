"""Operations that touch the vector index, runnable in the CLI process or handed to the
running service (see bot/runtime.py). Parameters and results are plain JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.wiring import Services
from core.acl import DEFAULT_POLICY, load_policy
from core.answering.progress import Progress as AnswerProgress
from core.answering.types import Asker, Audience, Question

Progress = Callable[[int, int, str], None] | None
# Receives an answer's progress as JSON events: {"status"}, {"delta"} or {"restart"}.
Emit = Callable[[dict[str, Any]], Awaitable[None]]


async def ingest(services: Services, params: dict[str, Any], progress: Progress = None) -> dict:
    if params.get("reindex"):
        # The CLI re-indexes while building its own services; a running service cannot
        # drop the index it is answering from.
        raise ValueError("re-indexing needs the service stopped")
    policy = load_policy(Path(params["acl_file"])) if params.get("acl_file") else DEFAULT_POLICY
    async with services.ingest_lock():
        report = await services.ingestor.ingest(
            [Path(p) for p in params["paths"]],
            policy,
            prune=bool(params.get("prune")),
            progress=progress,
        )
    return report.to_dict()


async def search(services: Services, params: dict[str, Any]) -> list[dict]:
    resolved = await services.directory.resolve_email(params["email"])
    out = []
    for query in params["queries"]:
        result = await services.retriever.search(query, resolved.principals, params.get("k"))
        out.append(
            {
                "query": query,
                "as": resolved.email,
                "known_user": resolved.known,
                "principals": sorted(resolved.principals),
                **({} if resolved.known else {"note": "unknown user: public documents only"}),
                "hits": [
                    {
                        "chunk_id": h.chunk.chunk_id,
                        "document_id": h.chunk.document_id,
                        "title": h.chunk.title,
                        "source": h.chunk.source,
                        "page": h.chunk.page,
                        "score": h.score,
                        "classification": h.chunk.classification,
                    }
                    for h in result.hits
                ],
            }
        )
    return out


async def ask(services: Services, params: dict[str, Any], emit: Emit | None = None) -> list[dict]:
    """The answers; with ``emit``, each answer's progress as it is made (``ask --stream``)."""
    sink = None
    if emit is not None:

        async def sink(step: AnswerProgress) -> None:
            await emit(progress_event(step))

    answers = []
    for item in params["questions"]:
        question = Question(
            text=item["text"],
            asker=Asker(email=item["email"]),
            audience=Audience.parse(item.get("audience") or "dm"),
            conversation_id=item.get("conversation"),
        )
        answers.append((await services.answers.answer(question, progress=sink)).to_dict())
    return answers


def progress_event(step: AnswerProgress) -> dict[str, Any]:
    if step.restart:
        return {"restart": True}
    return {"status": step.status} if step.status else {"delta": step.delta}


async def cache(services: Services, params: dict[str, Any]) -> dict:
    if params["command"] == "clear":
        return {"removed": await services.cache_store.clear()}
    return await services.cache_store.stats()


async def purge(services: Services, params: dict[str, Any]) -> dict:
    from datetime import UTC, datetime

    from adapters.db.retention import purge as purge_older

    cutoff = datetime.fromtimestamp(float(params["cutoff"]), UTC)
    return await purge_older(
        services.engine, services.cache_store, cutoff, bool(params.get("dry_run"))
    )


async def release_gate(services: Services, params: dict[str, Any]) -> dict:
    from bot.release_gate import gate

    return await gate(services, params)


async def preflight(services: Services, params: dict[str, Any]) -> dict:
    from bot.preflight import index_items

    return await index_items(services, params)


# Operations that can report progress while they run (`POST /admin/run` with "stream").
STREAMING: dict[str, Callable[[Services, dict[str, Any], Emit], Awaitable[Any]]] = {"ask": ask}

OPERATIONS: dict[str, Callable[[Services, dict[str, Any]], Awaitable[Any]]] = {
    "release_gate": release_gate,
    "preflight": preflight,
    "ingest": ingest,
    "search": search,
    "ask": ask,
    "cache": cache,
    "purge": purge,
}
