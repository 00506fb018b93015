"""Ingestion: files → parsed documents → chunks → passages → vectors and catalog rows.

Per document the order is what makes a replacement atomic for readers: new vectors are
written first (retrieval ignores vectors the catalog does not list), then the catalog swaps
the document's chunks in one transaction, then vectors nobody uses any more are deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.acl import AclPolicy, acl_from_front_matter, classification_from_front_matter
from core.classification import DEFAULT_LEVEL
from core.documents import (
    ChunkRecord,
    DocumentRecord,
    IndexedDocument,
    chunk_id,
    passage_id,
    sha256,
)
from core.ingest.chunking import chunk_document
from core.ingest.parsing import SUPPORTED_SUFFIXES, ParseError, parse_bytes
from core.ports import Catalog, Embedder, VectorIndex
from core.principals import acl_key


@dataclass(frozen=True, slots=True)
class IngestConfig:
    chunk_max_chars: int = 900
    chunk_overlap_chars: int = 150
    near_duplicate_similarity: float = 0.95
    default_classification: str = DEFAULT_LEVEL


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unsupported types found in folders
    chunks: int = 0
    passages_embedded: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "pruned": len(self.pruned),
            "failed": self.failed,
            "skipped": self.skipped,
            "chunks": self.chunks,
            "passages_embedded": self.passages_embedded,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "seconds": round(self.seconds, 2),
            "documents": {
                "added": self.added,
                "updated": self.updated,
                "pruned": self.pruned,
            },
        }


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    root: Path
    relpath: str  # POSIX, relative to root
    named: bool = False  # given by name on the command line rather than found in a folder


def discover(paths: Sequence[Path]) -> list[SourceFile]:
    """Files to ingest: a directory contributes every file under it (hidden ones skipped)."""
    found: list[SourceFile] = []
    for raw in paths:
        path = raw.resolve()
        if path.is_dir():
            for file in sorted(_walk(path)):
                found.append(SourceFile(file, path, file.relative_to(path).as_posix()))
        else:
            found.append(SourceFile(path, path.parent, path.name, named=True))
    return found


def _walk(root: Path) -> Iterator[Path]:
    for item in root.rglob("*"):
        rel = item.relative_to(root)
        if item.is_file() and not any(part.startswith(".") for part in rel.parts):
            yield item


class Ingestor:
    def __init__(
        self,
        catalog: Catalog,
        index: VectorIndex,
        embedder: Embedder,
        config: IngestConfig | None = None,
    ) -> None:
        self._catalog = catalog
        self._index = index
        self._embedder = embedder
        self._config = config or IngestConfig()

    async def ingest(
        self,
        paths: Sequence[Path],
        policy: AclPolicy,
        *,
        prune: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files = discover(paths)
        known: dict[str, dict[str, IndexedDocument]] = {}
        for root in {f.root for f in files} | {p.resolve() for p in paths if p.is_dir()}:
            known[str(root)] = await self._catalog.indexed_documents(str(root))
        seen: set[str] = set()
        for number, source in enumerate(files, start=1):
            if progress:
                progress(number, len(files), source.relpath)
            if source.path.suffix.lower() not in SUPPORTED_SUFFIXES:
                if source.named:
                    reason = f"unsupported file type '{source.path.suffix or source.path.name}'"
                    report.failed.append({"path": source.relpath, "reason": reason})
                else:
                    report.skipped.append(source.relpath)
                continue
            seen.add(source.relpath)
            try:
                await self._ingest_file(source, policy, known[str(source.root)], report)
            except (ParseError, ValueError, OSError) as exc:
                report.failed.append({"path": source.relpath, "reason": str(exc)})
        if prune:
            for path in paths:
                root = path.resolve()
                if root.is_dir():
                    gone = sorted(i for i, d in known[str(root)].items() if d.source not in seen)
                    orphans = await self._catalog.delete_documents(gone)
                    await asyncio.to_thread(self._index.delete, orphans)
                    report.pruned.extend(gone)
        report.seconds = time.perf_counter() - started
        return report

    async def _ingest_file(
        self,
        source: SourceFile,
        policy: AclPolicy,
        known: dict[str, IndexedDocument],
        report: IngestReport,
    ) -> None:
        data = await asyncio.to_thread(source.path.read_bytes)
        content_hash = sha256(data)
        parsed = await asyncio.to_thread(
            parse_bytes, data, source.path.suffix.lower(), _fallback_title(source.path)
        )
        acl = acl_from_front_matter(parsed.front_matter) or policy.acl_for(source.relpath)
        level = (
            classification_from_front_matter(parsed.front_matter)
            or policy.classification_for(source.relpath)
            or self._config.default_classification
        )
        doc_id = str(parsed.front_matter.get("id") or source.relpath)
        key = acl_key(acl)
        previous = known.get(doc_id)
        if (
            previous
            and previous.content_hash == content_hash
            and previous.acl_key == key
            and previous.classification == level
        ):
            report.unchanged.append(doc_id)
            return
        drafts = chunk_document(
            parsed,
            max_chars=self._config.chunk_max_chars,
            overlap_chars=self._config.chunk_overlap_chars,
        )
        chunks = []
        for draft in drafts:
            text_hash = sha256(draft.text)
            context = " > ".join((parsed.title, *draft.heading_path))
            chunks.append(
                ChunkRecord(
                    id=chunk_id(doc_id, draft.position, text_hash),
                    position=draft.position,
                    page=draft.page,
                    heading_path=draft.heading_path,
                    content_hash=text_hash,
                    passage_id=passage_id(key, text_hash),
                    text=draft.text,
                    index_text=f"{context}\n{draft.text}",
                )
            )
        await self._embed_new_passages(chunks, key, report)
        document = DocumentRecord(
            id=doc_id,
            source=source.relpath,
            root=str(source.root),
            title=parsed.title,
            format=source.path.suffix.lower().lstrip("."),
            content_hash=content_hash,
            acl=acl,
            updated_at=datetime.fromtimestamp(source.path.stat().st_mtime, UTC),
            classification=level,
        )
        orphans = await self._catalog.replace_document(document, chunks)
        await asyncio.to_thread(self._index.delete, orphans)
        report.chunks += len(chunks)
        (report.updated if previous else report.added).append(doc_id)

    async def _embed_new_passages(
        self, chunks: list[ChunkRecord], key: str, report: IngestReport
    ) -> None:
        unique: dict[str, ChunkRecord] = {}
        for chunk in chunks:
            unique.setdefault(chunk.passage_id, chunk)
        stored = await self._catalog.existing_passages(list(unique))
        report.exact_duplicates += len(chunks) - len(unique) + len(stored)
        new = [c for pid, c in unique.items() if pid not in stored]
        if not new:
            return
        vectors = await asyncio.to_thread(self._embedder.embed, [c.index_text for c in new])
        report.near_duplicates += await asyncio.to_thread(self._count_near_duplicates, vectors)
        await asyncio.to_thread(
            self._index.upsert, [c.passage_id for c in new], vectors, [key] * len(new)
        )
        report.passages_embedded += len(new)

    def _count_near_duplicates(self, vectors: list[list[float]]) -> int:
        """New passages almost identical to one already indexed (reported, still stored)."""
        threshold = self._config.near_duplicate_similarity
        nearest = self._index.nearest_similarity(vectors)
        return sum(
            1 for similarity in nearest if similarity is not None and similarity >= threshold
        )


def _fallback_title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name
