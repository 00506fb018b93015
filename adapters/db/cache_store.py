"""The CacheStore port: question vectors in a Chroma collection, entries in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from chromadb.api import ClientAPI
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.engine import sessionmaker
from adapters.db.models import CacheEntry
from core.cache import CachedAnswer, ContextChunk


class ChromaSqlCacheStore:
    def __init__(self, client: ClientAPI, collection: str, engine: AsyncEngine) -> None:
        self._client = client
        self._name = collection
        self._collection = client.get_or_create_collection(
            collection, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        self._sessions = sessionmaker(engine)

    async def nearest(self, vector: Sequence[float], n: int) -> list[tuple[str, float]]:
        def query() -> list[tuple[str, float]]:
            result = self._collection.query(
                query_embeddings=[list(vector)], n_results=n, include=["distances"]
            )
            return [
                (i, 1.0 - float(d))
                for i, d in zip(result["ids"][0], result["distances"][0], strict=True)
            ]

        return await asyncio.to_thread(query)

    async def same_question(self, question: str, n: int) -> list[str]:
        async with self._sessions() as session:
            ids = await session.scalars(
                select(CacheEntry.id)
                .where(CacheEntry.question == question)
                .order_by(CacheEntry.created_at.desc())
                .limit(n)
            )
            return list(ids)

    async def load(self, ids: Sequence[str]) -> dict[str, CachedAnswer]:
        async with self._sessions() as session:
            rows = await session.scalars(select(CacheEntry).where(CacheEntry.id.in_(list(ids))))
            return {row.id: _entry(row) for row in rows}

    async def save(self, entry: CachedAnswer, vector: Sequence[float]) -> None:
        # The row first: a vector without a row is ignored by `load`; never the reverse.
        async with self._sessions() as session, session.begin():
            session.add(
                CacheEntry(
                    id=entry.id,
                    created_at=datetime.fromtimestamp(entry.created_at, UTC),
                    release=entry.release,
                    question=entry.question,
                    answer=entry.answer,
                    context=[
                        {
                            "chunk_id": c.chunk_id,
                            "document_id": c.document_id,
                            "acl_key": c.acl_key,
                            "version": c.version,
                            "classification": c.classification,
                        }
                        for c in entry.context
                    ],
                    request_id=entry.request_id,
                    hits=0,
                )
            )
        await asyncio.to_thread(self._collection.upsert, ids=[entry.id], embeddings=[list(vector)])

    async def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        async with self._sessions() as session, session.begin():
            await session.execute(delete(CacheEntry).where(CacheEntry.id.in_(list(ids))))
        await asyncio.to_thread(self._collection.delete, ids=list(ids))

    async def record_hit(self, entry_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(CacheEntry).where(CacheEntry.id == entry_id).values(hits=CacheEntry.hits + 1)
            )

    async def stats(self) -> dict[str, object]:
        async with self._sessions() as session:
            entries, hits, oldest = (
                await session.execute(
                    select(
                        func.count(CacheEntry.id),
                        func.coalesce(func.sum(CacheEntry.hits), 0),
                        func.min(CacheEntry.created_at),
                    )
                )
            ).one()
            releases = (
                await session.execute(
                    select(CacheEntry.release, func.count()).group_by(CacheEntry.release)
                )
            ).all()
        return {
            "entries": int(entries),
            "hits_served": int(hits),
            "oldest": oldest.isoformat() if oldest else None,
            "by_release": {release: int(count) for release, count in releases},
        }

    async def clear(self) -> int:
        async with self._sessions() as session, session.begin():
            removed = (await session.execute(delete(CacheEntry))).rowcount
        await asyncio.to_thread(self._client.delete_collection, self._name)
        self._collection = self._client.get_or_create_collection(
            self._name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        return int(removed or 0)


def _entry(row: CacheEntry) -> CachedAnswer:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return CachedAnswer(
        id=row.id,
        created_at=created.timestamp(),
        release=row.release,
        question=row.question,
        answer=row.answer,
        context=[ContextChunk(**c) for c in row.context],
        request_id=row.request_id,
        hits=row.hits,
    )
