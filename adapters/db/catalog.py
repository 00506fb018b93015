"""The Catalog port on SQLAlchemy: documents, chunks, passages, ACL sets, lexical search.

Every change that alters what retrieval may return commits in one transaction and bumps
`catalog_version`, so readers can cache derived data (ACL sets, counts) per version.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Integer, Text, bindparam, cast, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.db.engine import sessionmaker
from adapters.db.models import AclSet, Chunk, Document, IndexState, Passage
from adapters.db.reader import row_reader
from core.classification import strictest
from core.documents import ChunkRecord, DocumentRecord, IndexedDocument, StoredChunk
from core.principals import acl_key

VERSION_KEY = "catalog_version"
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    (
        "a an and are as at be but by can do does for from how i if in into is it me my no not of "
        "on or our so than that the their then there these they this to was we what when where "
        "which who why will with you your"
    ).split()
)

# Built once: a statement's construction costs as much as running it on a small result.
_CHUNKS_FOR_PASSAGES = (
    select(
        Chunk.id,
        Chunk.passage_id,
        Chunk.document_id,
        Chunk.page,
        Chunk.heading_path,
        Chunk.acl_key,
        Document.title,
        Document.source,
        Passage.text,
        Document.classification,
    )
    .join(Document, Document.id == Chunk.document_id)
    .join(Passage, Passage.id == Chunk.passage_id)
    .where(Chunk.passage_id.in_(bindparam("ids", expanding=True)))
    .order_by(Chunk.document_id, Chunk.position)
)
_SQLITE_LEXICAL = text(
    "SELECT f.passage_id, bm25(passages_fts) AS score FROM passages_fts f "
    "JOIN passages p ON p.id = f.passage_id "
    "WHERE passages_fts MATCH :match AND p.acl_key IN :keys "
    "ORDER BY score LIMIT :limit"
).bindparams(bindparam("keys", expanding=True))
_POSTGRES_LEXICAL = text(
    "SELECT p.id, ts_rank_cd(p.tsv, q) AS score "
    "FROM passages p, to_tsquery('english', :match) q "
    "WHERE p.tsv @@ q AND p.acl_key IN :keys ORDER BY score DESC LIMIT :limit"
).bindparams(bindparam("keys", expanding=True))


class SqlCatalog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = sessionmaker(engine)
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._reads = row_reader(engine)

    # The read path below runs on every question: plain Core queries through the row
    # reader cost half the CPU of an ORM session and one thread hand-off instead of five.

    async def version(self) -> int:
        value = await self._reads.scalar(
            select(IndexState.value).where(IndexState.key == VERSION_KEY)
        )
        return int(value) if value else 0

    async def acl_sets(self) -> dict[str, frozenset[str]]:
        rows = await self._reads.all(select(AclSet.key, AclSet.principals))
        return {key: frozenset(principals) for key, principals in rows}

    async def passage_counts(self) -> dict[str, int]:
        rows = await self._reads.all(
            select(Passage.acl_key, func.count()).group_by(Passage.acl_key)
        )
        return {key: int(count) for key, count in rows}

    async def chunks_for_passages(self, passage_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The current chunk for each passage (the first by document and position). A passage
        shared by documents (the same text under the same ACL) carries the strictest of their
        classifications: its text is that sensitive somewhere."""
        if not passage_ids:
            return {}
        rows = await self._reads.all(_CHUNKS_FOR_PASSAGES, {"ids": list(set(passage_ids))})
        found: dict[str, StoredChunk] = {}
        levels: dict[str, list[str]] = {}
        for row in rows:
            chunk_id, passage_id, document_id, page, headings, key, title, source, body, level = row
            levels.setdefault(passage_id, []).append(level)
            if passage_id not in found:
                found[passage_id] = StoredChunk(
                    chunk_id=chunk_id,
                    passage_id=passage_id,
                    document_id=document_id,
                    title=title,
                    source=source,
                    page=page,
                    heading_path=tuple(headings or ()),
                    text=body,
                    acl_key=key,
                )
        return {
            pid: replace(chunk, classification=strictest(levels[pid]))
            for pid, chunk in found.items()
        }

    async def lexical_search(
        self, query: str, acl_keys: Collection[str], limit: int
    ) -> list[tuple[str, float]]:
        """Best passages by keyword relevance among those the ACL keys allow."""
        terms = [t for t in dict.fromkeys(_WORD_RE.findall(query.lower())) if t not in _STOPWORDS]
        if not terms or not acl_keys:
            return []
        keys = list(acl_keys)
        if self._is_sqlite:
            match = " OR ".join(f'"{t}"' for t in terms)
            stmt = _SQLITE_LEXICAL
            params = {"match": match, "keys": keys, "limit": limit}
        else:
            stmt = _POSTGRES_LEXICAL
            params = {"match": " | ".join(terms), "keys": keys, "limit": limit}
        rows = await self._reads.all(stmt, params)
        # bm25() is lower-is-better; report higher-is-better for both databases.
        return [(pid, -float(s) if self._is_sqlite else float(s)) for pid, s in rows]

    async def indexed_documents(self, root: str) -> dict[str, IndexedDocument]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(
                        Document.id,
                        Document.source,
                        Document.content_hash,
                        Document.acl_key,
                        Document.classification,
                    ).where(Document.root == root)
                )
            ).all()
        return {i: IndexedDocument(s, h, k, c) for i, s, h, k, c in rows}

    async def document_versions(self, document_ids: Sequence[str]) -> dict[str, str]:
        """Each document's version: its content hash, ACL key and classification (any of
        them changing counts)."""
        if not document_ids:
            return {}
        rows = await self._reads.all(
            select(
                Document.id, Document.content_hash, Document.acl_key, Document.classification
            ).where(Document.id.in_(list(document_ids)))
        )
        return {i: f"{h}:{k}:{c}" for i, h, k, c in rows}

    async def existing_passages(self, passage_ids: Sequence[str]) -> set[str]:
        if not passage_ids:
            return set()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Passage.id).where(Passage.id.in_(list(set(passage_ids))))
            )
            return set(rows)

    async def replace_document(
        self, document: DocumentRecord, chunks: Sequence[ChunkRecord]
    ) -> list[str]:
        """Swap a document's chunks in one transaction; returns passage ids left unused."""
        key = acl_key(document.acl)
        async with self._sessions() as session, session.begin():
            await self._ensure_acl_set(session, key, document.acl)
            old_passages = set(
                await session.scalars(
                    select(Chunk.passage_id).where(Chunk.document_id == document.id)
                )
            )
            await session.execute(delete(Chunk).where(Chunk.document_id == document.id))
            await session.merge(
                Document(
                    id=document.id,
                    source=document.source,
                    root=document.root,
                    title=document.title,
                    format=document.format,
                    content_hash=document.content_hash,
                    acl_key=key,
                    updated_at=document.updated_at,
                    ingested_at=datetime.now(UTC),
                    chunk_count=len(chunks),
                    classification=document.classification,
                )
            )
            await self._add_passages(session, key, chunks)
            session.add_all(
                Chunk(
                    id=c.id,
                    document_id=document.id,
                    passage_id=c.passage_id,
                    position=c.position,
                    page=c.page,
                    heading_path=list(c.heading_path),
                    content_hash=c.content_hash,
                    acl_key=key,
                )
                for c in chunks
            )
            await session.flush()
            orphans = await self._drop_orphans(session, old_passages)
            await self._bump_version(session)
        return orphans

    async def delete_documents(self, document_ids: Sequence[str]) -> list[str]:
        if not document_ids:
            return []
        async with self._sessions() as session, session.begin():
            old_passages = set(
                await session.scalars(
                    select(Chunk.passage_id).where(Chunk.document_id.in_(list(document_ids)))
                )
            )
            await session.execute(delete(Chunk).where(Chunk.document_id.in_(list(document_ids))))
            await session.execute(delete(Document).where(Document.id.in_(list(document_ids))))
            orphans = await self._drop_orphans(session, old_passages)
            await self._bump_version(session)
        return orphans

    async def clear(self) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(Chunk))
            await session.execute(delete(Document))
            await session.execute(delete(Passage))
            if self._is_sqlite:
                await session.execute(text("DELETE FROM passages_fts"))
            await self._bump_version(session)

    async def _ensure_acl_set(
        self, session: AsyncSession, key: str, principals: frozenset[str]
    ) -> None:
        if await session.get(AclSet, key) is None:
            session.add(AclSet(key=key, principals=sorted(principals)))
            await session.flush()

    async def _add_passages(
        self, session: AsyncSession, key: str, chunks: Sequence[ChunkRecord]
    ) -> None:
        wanted = {c.passage_id: (c.text, c.index_text) for c in chunks}
        if not wanted:
            return
        present = set(await session.scalars(select(Passage.id).where(Passage.id.in_(wanted))))
        new = [(pid, texts) for pid, texts in wanted.items() if pid not in present]
        session.add_all(
            Passage(id=pid, acl_key=key, text=body, search_text=search)
            for pid, (body, search) in new
        )
        await session.flush()
        if self._is_sqlite and new:
            await session.execute(
                text("INSERT INTO passages_fts (passage_id, text) VALUES (:pid, :search)"),
                [{"pid": pid, "search": search} for pid, (_, search) in new],
            )

    async def _drop_orphans(self, session: AsyncSession, candidates: set[str]) -> list[str]:
        if not candidates:
            return []
        still_used = set(
            await session.scalars(
                select(Chunk.passage_id).where(Chunk.passage_id.in_(candidates)).distinct()
            )
        )
        orphans = sorted(candidates - still_used)
        if orphans:
            await session.execute(delete(Passage).where(Passage.id.in_(orphans)))
            if self._is_sqlite:
                await session.execute(
                    text("DELETE FROM passages_fts WHERE passage_id IN :ids").bindparams(
                        bindparam("ids", expanding=True)
                    ),
                    {"ids": orphans},
                )
        return orphans

    async def _bump_version(self, session: AsyncSession) -> None:
        updated = await session.execute(
            update(IndexState)
            .where(IndexState.key == VERSION_KEY)
            .values(value=cast(cast(IndexState.value, Integer) + 1, Text))
        )
        if updated.rowcount == 0:
            session.add(IndexState(key=VERSION_KEY, value="1"))
