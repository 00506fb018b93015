"""At most `max_per_document` passages of one document lead the top k (core.retrieval)."""

from __future__ import annotations

from core.documents import StoredChunk
from core.retrieval import _diverse


def chunk(pid: str, document: str) -> StoredChunk:
    return StoredChunk(pid, pid, document, document, document, None, (), "text", "k")


CHUNKS = {p: chunk(p, d) for p, d in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")]}


def test_a_long_document_leaves_room_for_another() -> None:
    assert _diverse(["a1", "a2", "a3", "b1"], 3, 2, CHUNKS) == ["a1", "a2", "b1"]


def test_the_top_k_stays_full_when_one_document_is_all_there_is() -> None:
    assert _diverse(["a1", "a2", "a3"], 3, 2, CHUNKS) == ["a1", "a2", "a3"]


def test_no_limit_keeps_the_fused_order() -> None:
    assert _diverse(["a1", "a2", "a3", "b1"], 3, 0, CHUNKS) == ["a1", "a2", "a3"]
