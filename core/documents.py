"""The catalog's records: documents, their chunks, and what retrieval hands back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from core.classification import DEFAULT_LEVEL


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: str
    source: str  # path relative to the ingested root, POSIX separators
    root: str
    title: str
    format: str
    content_hash: str
    acl: frozenset[str]
    updated_at: datetime
    classification: str = DEFAULT_LEVEL


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    id: str
    position: int
    page: int | None
    heading_path: tuple[str, ...]
    content_hash: str
    passage_id: str
    text: str
    index_text: str  # text plus its title and headings: what is embedded and keyword-indexed


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A current chunk as retrieval reports it."""

    chunk_id: str
    passage_id: str
    document_id: str
    title: str
    source: str
    page: int | None
    heading_path: tuple[str, ...]
    text: str
    acl_key: str
    # The document's; for a passage shared by several documents, the strictest of theirs.
    classification: str = "restricted"  # unset: fail closed (no limited tier receives it)


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    source: str
    content_hash: str
    acl_key: str
    classification: str = DEFAULT_LEVEL


def sha256(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def chunk_id(document_id: str, position: int, content_hash: str) -> str:
    return sha256(f"{document_id}\x00{position}\x00{content_hash}")[:32]


def passage_id(acl_key: str, content_hash: str) -> str:
    """One vector per (ACL set, text): exact duplicates under the same ACL are stored once.

    The id starts with the ACL key, so a record's ACL never changes under its id and can be
    read from the id alone: retrieval checks permissions without fetching metadata.
    """
    return f"{acl_key}.{content_hash[:32]}"


def acl_key_of(passage_id: str) -> str:
    return passage_id.partition(".")[0]
