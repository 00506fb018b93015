"""Permission leaks: anything retrieved, cited or quoted that the case's readers may not read.

Judged twice over, so that a broken ACL cannot hide itself: against the ACL each chunk was
ingested with (what the index believes), and, when the library names one, against a
reference ACL file (what the library's authors know to be right). A document whose ingested
ACL was loosened by mistake is still a leak by the reference.

Quoted text is found by 8-word shingles: a run of eight words of the answer that occurs only
in chunks the readers may not read is a quote from them. A run that also occurs in a
readable chunk is not a leak (the reader could have it from there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.acl import AclPolicy
from core.principals import Access

SHINGLE_WORDS = 8
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class CorpusChunk:
    chunk_id: str
    document_id: str
    source: str
    page: int | None
    acl: frozenset[str]
    text: str


def shingles(text: str) -> set[int]:
    words = _WORD.findall(text.lower())
    return {
        hash(tuple(words[i : i + SHINGLE_WORDS]))
        for i in range(max(0, len(words) - SHINGLE_WORDS + 1))
    }


class LeakDetector:
    def __init__(self, chunks: Iterable[CorpusChunk], reference: AclPolicy | None = None) -> None:
        self.chunks = {c.chunk_id: c for c in chunks}
        self._reference = reference
        self._by_shingle: dict[int, list[str]] = {}
        for chunk in self.chunks.values():
            for shingle in shingles(chunk.text):
                self._by_shingle.setdefault(shingle, []).append(chunk.chunk_id)

    def readable(self, access: Access, chunk: CorpusChunk) -> bool:
        if not access.allows(chunk.acl):
            return False
        return self._reference is None or access.allows(self._reference.acl_for(chunk.source))

    def check(
        self, access: Access, retrieved: Sequence[str], cited: Sequence[str], text: str
    ) -> list[dict[str, str]]:
        """One finding per unreadable document, with how it reached the answer."""
        found: dict[tuple[str, str], dict[str, str]] = {}
        for how, ids in (("retrieved", retrieved), ("cited", cited)):
            for chunk_id in ids:
                chunk = self.chunks.get(chunk_id)
                if chunk is not None and not self.readable(access, chunk):
                    found.setdefault((how, chunk.document_id), _finding(how, chunk))
        for shingle in shingles(text):
            owners = [self.chunks[c] for c in self._by_shingle.get(shingle, ())]
            if owners and not any(self.readable(access, c) for c in owners):
                found.setdefault(("quoted", owners[0].document_id), _finding("quoted", owners[0]))
        return list(found.values())


def _finding(how: str, chunk: CorpusChunk) -> dict[str, str]:
    return {"how": how, "document_id": chunk.document_id, "chunk_id": chunk.chunk_id}
