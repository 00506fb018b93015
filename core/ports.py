"""Ports: the small interfaces the core needs from the outside world.

Adapters implement them (`adapters/`); tests may swap the transport under an adapter, never
the logic above it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.documents import ChunkRecord, DocumentRecord, IndexedDocument, StoredChunk


class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True, slots=True)
class VectorMatch:
    passage_id: str
    acl_key: str
    similarity: float


class IndexMismatchError(RuntimeError):
    """The index was built with another embedder: the operator must re-index."""


class VectorIndex(Protocol):
    """Passage vectors with their ACL key. Reads and writes are synchronous."""

    def ensure_embedder(self, name: str, dimension: int) -> None: ...

    def upsert(
        self, ids: Sequence[str], vectors: Sequence[Sequence[float]], acl_keys: Sequence[str]
    ) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def existing(self, ids: Sequence[str]) -> set[str]: ...

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]: ...

    def query(
        self, vector: Sequence[float], n: int, acl_keys: Collection[str] | None = None
    ) -> list[VectorMatch]: ...

    def query_many(self, vectors: Sequence[Sequence[float]], n: int) -> list[list[VectorMatch]]:
        """The n nearest passages to each vector (unfiltered), in one round trip."""
        ...

    def nearest_similarity(self, vectors: Sequence[Sequence[float]]) -> list[float | None]:
        """For each vector, the similarity of the closest indexed passage (None: empty)."""
        ...

    def count(self) -> int: ...


class Catalog(Protocol):
    """The relational source of truth for documents, chunks and ACL sets (async)."""

    async def version(self) -> int: ...

    async def acl_sets(self) -> dict[str, frozenset[str]]: ...

    async def passage_counts(self) -> dict[str, int]: ...

    async def chunks_for_passages(self, passage_ids: Sequence[str]) -> dict[str, StoredChunk]: ...

    async def lexical_search(
        self, query: str, acl_keys: Collection[str], limit: int
    ) -> list[tuple[str, float]]: ...

    async def indexed_documents(self, root: str) -> dict[str, IndexedDocument]: ...

    async def existing_passages(self, passage_ids: Sequence[str]) -> set[str]: ...

    async def replace_document(
        self, document: DocumentRecord, chunks: Sequence[ChunkRecord]
    ) -> list[str]: ...

    async def delete_documents(self, document_ids: Sequence[str]) -> list[str]: ...
