"""Chroma as the VectorIndex: embedded (PersistentClient) or a server (HttpClient).

Each record is one passage: its id, its vector and its ACL key. A passage id starts with its
ACL key, so a record read from the index is permission-checked from its id alone; the
`acl_key` metadata field serves the filtered query used when over-fetching would not pay.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from core.documents import acl_key_of
from core.ports import IndexMismatchError, VectorMatch

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb
from chromadb.api import ClientAPI


def open_client(*, path: Path | None = None, url: str | None = None) -> ClientAPI:
    settings = chromadb.Settings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url)
        return chromadb.HttpClient(
            host=parsed.hostname or "localhost",
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=settings,
        )
    assert path is not None
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def scratch_client() -> ClientAPI:
    """An in-memory Chroma in this process: collections no other process (or replica) can
    see, gone with the process whatever happens to it."""
    return chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))


class ChromaVectorIndex:
    def __init__(self, client: ClientAPI, collection: str) -> None:
        self._client = client
        self._name = collection
        self._collection = client.get_or_create_collection(
            collection, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        self._batch = max(1, min(client.get_max_batch_size(), 4096))

    def ensure_embedder(self, name: str, dimension: int) -> None:
        """Record the embedder on an empty index; refuse a different one on a filled index."""
        meta = dict(self._collection.metadata or {})
        stored = (meta.get("embedder"), meta.get("dimension"))
        if stored == (name, dimension):
            return
        if stored == (None, None) or self._collection.count() == 0:
            meta.update(embedder=name, dimension=dimension)
            self._collection.modify(metadata=meta)
            return
        raise IndexMismatchError(
            f"the index was built with {stored[0]} ({stored[1]} dimensions) but the configured "
            f"embedder is {name} ({dimension} dimensions): re-index with "
            "`answerdesk ingest --reindex PATH...` or restore the previous embeddings setting"
        )

    def reset(self) -> None:
        self._client.delete_collection(self._name)
        self._collection = self._client.get_or_create_collection(
            self._name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )

    def upsert(
        self, ids: Sequence[str], vectors: Sequence[Sequence[float]], acl_keys: Sequence[str]
    ) -> None:
        for start in range(0, len(ids), self._batch):
            end = start + self._batch
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=[list(v) for v in vectors[start:end]],
                metadatas=[{"acl_key": key} for key in acl_keys[start:end]],
            )

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), self._batch):
            self._collection.delete(ids=list(ids[start : start + self._batch]))

    def existing(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), self._batch):
            found.update(
                self._collection.get(ids=list(ids[start : start + self._batch]), include=[])["ids"]
            )
        return found

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        got = self._collection.get(ids=list(ids), include=["embeddings"])
        return {i: list(map(float, v)) for i, v in zip(got["ids"], got["embeddings"], strict=True)}

    def query(
        self, vector: Sequence[float], n: int, acl_keys: Collection[str] | None = None
    ) -> list[VectorMatch]:
        where = None
        if acl_keys is not None:
            if not acl_keys:
                return []
            where = {"acl_key": {"$in": sorted(acl_keys)}}
        return self._query([vector], n, where)[0]

    def query_many(self, vectors: Sequence[Sequence[float]], n: int) -> list[list[VectorMatch]]:
        if not vectors:
            return []
        return self._query(vectors, n, None)

    def _query(
        self, vectors: Sequence[Sequence[float]], n: int, where: dict | None
    ) -> list[list[VectorMatch]]:
        result = self._collection.query(
            query_embeddings=np.asarray(vectors, dtype=np.float32),
            n_results=max(1, n),
            where=where,
            include=["distances"],  # the ACL key is part of the id: no metadata to fetch
        )
        return [
            [
                VectorMatch(passage_id=i, acl_key=acl_key_of(i), similarity=1.0 - float(d))
                for i, d in zip(ids, distances, strict=True)
            ]
            for ids, distances in zip(result["ids"], result["distances"] or [], strict=True)
        ]

    def nearest_similarity(self, vectors: Sequence[Sequence[float]]) -> list[float | None]:
        if not vectors:
            return []
        result = self._collection.query(
            query_embeddings=[list(v) for v in vectors], n_results=1, include=["distances"]
        )
        return [1.0 - float(d[0]) if d else None for d in result["distances"]]

    def count(self) -> int:
        return self._collection.count()


def server_reachable(url: str, timeout_s: float = 5.0) -> str | None:
    """None when the Chroma server at `url` answers its heartbeat, else the reason."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(
            f"{url.rstrip('/')}/api/v2/heartbeat", timeout=timeout_s
        ) as response:
            return None if response.status == 200 else f"heartbeat answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"heartbeat answered {exc.code}"
    except (OSError, ValueError) as exc:
        return f"unreachable ({type(exc).__name__})"
