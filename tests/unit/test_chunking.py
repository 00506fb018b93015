"""Chunking of parsed documents (core.ingest.chunking), plus a run over the Zava PDFs."""

from __future__ import annotations

import itertools
import re
import statistics
from pathlib import Path

import pytest

from core.ingest.chunking import ChunkDraft, chunk_document
from core.ingest.parsing import ParsedDocument, Section, parse_file

ZAVA = Path("/work/shared/corpora/zava")


def sentence(index: int, words: int = 12) -> str:
    """A distinct, deterministic English-looking sentence."""
    body = " ".join(f"word{index}x{n}" for n in range(words - 1))
    return f"Sentence {body} end{index}."


def paragraph(start: int, sentences: int) -> str:
    return " ".join(sentence(start + n) for n in range(sentences))


def doc_of(*sections: Section) -> ParsedDocument:
    return ParsedDocument(title="Doc", sections=tuple(sections))


def assert_well_formed(chunks: list[ChunkDraft], max_chars: int) -> None:
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text.strip() == chunk.text
        assert chunk.text
        assert len(chunk.text) <= max_chars
        assert "\n\n" not in chunk.text
        assert "  " not in chunk.text


def test_whole_paragraphs_are_packed_up_to_max_chars() -> None:
    paragraphs = [paragraph(10 * n, 3) for n in range(5)]  # ~300 chars each
    doc = doc_of(Section("\n\n".join(paragraphs), 1, ("A",)))
    chunks = chunk_document(doc, max_chars=700, overlap_chars=0)
    assert_well_formed(chunks, 700)
    lines = [line for chunk in chunks for line in chunk.text.split("\n")]
    assert lines == paragraphs  # no paragraph was cut, none lost or duplicated
    assert chunks[0].text == f"{paragraphs[0]}\n{paragraphs[1]}"


def test_chunks_never_span_pages_or_heading_paths() -> None:
    doc = doc_of(
        Section("Short text on page one.", 1, ("Benefits",)),
        Section("Short text on page two.", 2, ("Benefits",)),
        Section("Short text under another heading.", 2, ("Benefits", "Dental")),
        Section("Short text without a page.", None, ()),
    )
    chunks = chunk_document(doc)
    assert [(c.text, c.page, c.heading_path) for c in chunks] == [
        ("Short text on page one.", 1, ("Benefits",)),
        ("Short text on page two.", 2, ("Benefits",)),
        ("Short text under another heading.", 2, ("Benefits", "Dental")),
        ("Short text without a page.", None, ()),
    ]


def test_tiny_trailing_section_merges_only_with_same_page_and_headings() -> None:
    doc = doc_of(
        Section(paragraph(0, 3), 4, ("Vision",)),
        Section("A tiny note.", 4, ("Vision",)),
        Section("Another tiny note.", 5, ("Vision",)),
    )
    chunks = chunk_document(doc, min_chars=200)
    assert len(chunks) == 2
    assert chunks[0].text.endswith("\nA tiny note.")
    assert (chunks[1].text, chunks[1].page) == ("Another tiny note.", 5)


def sentences_of(text: str) -> list[str]:
    return re.split(r"(?<=\.)\s+(?=Sentence )", text)


def shared_sentences(previous: str, current: str) -> list[str]:
    """The longest run of sentences that ends ``previous`` and starts ``current``."""
    before, after = sentences_of(previous), sentences_of(current)
    for size in range(min(len(before), len(after)), 0, -1):
        if before[-size:] == after[:size]:
            return after[:size]
    return []


def test_overlap_repeats_whole_trailing_sentences_within_a_section() -> None:
    doc = doc_of(Section(paragraph(0, 40), 1, ("A",)), Section(paragraph(100, 40), 1, ("B",)))
    chunks = chunk_document(doc, max_chars=600, overlap_chars=250)
    assert_well_formed(chunks, 600)
    pairs = list(itertools.pairwise(chunks))
    within = [(a, b) for a, b in pairs if a.heading_path == b.heading_path]
    across = [(a, b) for a, b in pairs if a.heading_path != b.heading_path]
    assert len(within) >= 6
    assert len(across) == 1
    for previous, current in within:
        overlap = shared_sentences(previous.text, current.text)
        assert overlap, "consecutive chunks of one section should overlap"
        assert len(" ".join(overlap)) <= 250
        assert len(overlap) < len(sentences_of(previous.text))
    previous, current = across[0]
    assert shared_sentences(previous.text, current.text) == []
    assert current.text.startswith(sentence(100))


def test_overlap_is_optional_and_content_is_never_lost() -> None:
    text = "\n\n".join(paragraph(10 * n, 7) for n in range(6))
    chunks = chunk_document(doc_of(Section(text, None, ())), max_chars=500, overlap_chars=0)
    assert_well_formed(chunks, 500)
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_long_paragraph_splits_at_sentence_boundaries() -> None:
    text = paragraph(0, 30)  # ~3000 chars in one paragraph
    chunks = chunk_document(doc_of(Section(text, 3, ())), max_chars=900, overlap_chars=150)
    assert_well_formed(chunks, 900)
    assert len(chunks) >= 4
    for chunk in chunks:
        assert chunk.text.startswith("Sentence ")
        assert chunk.text.endswith(".")


def test_sentence_longer_than_max_splits_at_whitespace() -> None:
    words = [f"token{n}" for n in range(400)]
    chunks = chunk_document(doc_of(Section(" ".join(words), None, ())), max_chars=300)
    assert_well_formed(chunks, 300)
    for chunk in chunks:
        assert all(word in words for word in chunk.text.split())


def test_unbreakable_token_is_cut_hard() -> None:
    blob = "x" * 2000
    chunks = chunk_document(doc_of(Section(f"See {blob} here.", None, ())), max_chars=900)
    assert_well_formed(chunks, 900)
    assert "".join(chunk.text for chunk in chunks).count("x") >= 2000


def test_abbreviations_do_not_end_sentences() -> None:
    first = "Coverage includes e.g. Dental cleanings and Dr. Smith visits " + "a" * 40 + "."
    text = f"{first} {paragraph(0, 9)}"
    chunks = chunk_document(doc_of(Section(text, None, ())), max_chars=400, overlap_chars=0)
    assert chunks[0].text.startswith(first)


def test_whitespace_is_normalised_but_line_breaks_kept() -> None:
    text = "Intro   with\t tabs.  \n\n\n- item  one\n-   item two\n\n  Closing\u00a0line.  "
    chunks = chunk_document(doc_of(Section(text, None, ())))
    assert [c.text for c in chunks] == ["Intro with tabs.\n- item one\n- item two\nClosing line."]


def test_lead_in_line_moves_with_the_list_it_introduces() -> None:
    intro = paragraph(0, 6)
    items = "\n".join(f"- {sentence(50 + n, 6)}" for n in range(6))
    text = f"{intro}\n\nThe plan does not cover:\n\n{items}"
    chunks = chunk_document(doc_of(Section(text, 1, ())), max_chars=700, overlap_chars=0)
    assert_well_formed(chunks, 700)
    assert chunks[1].text.startswith("The plan does not cover:\n- ")


def test_empty_sections_produce_no_chunks() -> None:
    doc = doc_of(Section("  \n\n \t ", 1, ()), Section("Real text.", 2, ()))
    assert [(c.position, c.text, c.page) for c in chunk_document(doc)] == [(0, "Real text.", 2)]
    assert chunk_document(doc_of()) == []


def test_chunking_is_deterministic() -> None:
    text = "\n\n".join(paragraph(10 * n, 5 + n % 4) for n in range(12))
    doc = doc_of(Section(text, 1, ("A",)), Section(text, 2, ("B",)))
    assert chunk_document(doc) == chunk_document(doc)
    assert chunk_document(doc) == chunk_document(doc_of(*doc.sections))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_chars": 0},
        {"max_chars": 100, "overlap_chars": 100},
        {"overlap_chars": -1},
        {"min_chars": -1},
    ],
)
def test_invalid_sizes_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        chunk_document(doc_of(Section("Text.", None, ())), **kwargs)


@pytest.mark.slow
def test_zava_pdfs_chunk_within_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    if not ZAVA.is_dir():
        pytest.skip(f"Zava corpus not available at {ZAVA}")
    pdfs = sorted(ZAVA.glob("*.pdf"))
    if not pdfs:
        pytest.skip(f"no PDFs in {ZAVA}")
    max_chars = 900
    report = []
    for pdf in pdfs:
        doc = parse_file(pdf)
        chunks = chunk_document(doc, max_chars=max_chars)
        assert chunks, pdf.name
        assert doc.title
        assert_well_formed(chunks, max_chars + 10)
        assert all(isinstance(c.page, int) and c.page >= 1 for c in chunks), pdf.name
        sizes = [len(c.text) for c in chunks]
        report.append(f"{pdf.name}: {len(chunks)} chunks, avg {statistics.mean(sizes):.0f} chars")
    with capsys.disabled():
        print("\n" + "\n".join(report))
