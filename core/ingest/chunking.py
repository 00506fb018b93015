"""Split parsed documents into retrieval chunks.

Sized for all-MiniLM-L6-v2, which reads at most 256 word-pieces (about 1000 characters of
English) and silently truncates the rest, so chunks stay under ``max_chars`` without
exception. Chunks follow the document's own structure: whole paragraphs where they fit,
sentences where they do not, and never across a page or heading boundary, so every chunk
can be cited with one page and one heading path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from core.ingest.parsing import ParsedDocument

__all__ = ["ChunkDraft", "chunk_document"]


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    position: int
    text: str
    page: int | None
    heading_path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Unit:
    """The smallest piece the packer moves: a paragraph, or a sentence of a long one."""

    text: str
    joiner: str  # "\n" when it starts a paragraph or line, " " when it continues a line


_PARAGRAPH_SPLIT_RE = re.compile(r"\n[^\S\n]*\n")
_INLINE_SPACE_RE = re.compile(r"[^\S\n]+")
_SENTENCE_END_RE = re.compile(r"[.!?]+[\"'”’)\]]*(\s+)(?=[\"'“‘(\[]?[A-Z0-9])")
# A full stop after these does not end a sentence ("e.g. Dental", "Dr. Smith").
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "no", "fig"}
    | {"approx", "u.s", "a.m", "p.m", "dept", "ext", "tel"}
)


def chunk_document(
    doc: ParsedDocument,
    *,
    max_chars: int = 900,
    overlap_chars: int = 150,
    min_chars: int = 200,
) -> list[ChunkDraft]:
    """Chunks in reading order with 0-based positions; deterministic for equal input."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if not 0 <= overlap_chars < max_chars:
        raise ValueError("overlap_chars must be >= 0 and smaller than max_chars")
    if min_chars < 0:
        raise ValueError("min_chars must be >= 0")

    drafts: list[ChunkDraft] = []
    for section in doc.sections:
        texts = _pack(_section_units(section.text, max_chars), max_chars, overlap_chars)
        if not texts:
            continue
        previous = drafts[-1] if drafts else None
        if (
            previous is not None
            and len(texts) == 1
            and len(texts[0]) < min_chars
            and previous.page == section.page
            and previous.heading_path == section.heading_path
            and len(previous.text) + 1 + len(texts[0]) <= max_chars
        ):
            # A tiny section would make a weak embedding on its own; fold it in only where
            # the citation (page and headings) stays exactly the same.
            drafts[-1] = replace(previous, text=f"{previous.text}\n{texts[0]}")
            continue
        for text in texts:
            drafts.append(ChunkDraft(len(drafts), text, section.page, section.heading_path))
    return drafts


def _normalise_paragraph(paragraph: str) -> str:
    lines = (_INLINE_SPACE_RE.sub(" ", line).strip() for line in paragraph.split("\n"))
    return "\n".join(line for line in lines if line)


def _section_units(text: str, max_chars: int) -> list[_Unit]:
    units: list[_Unit] = []
    for raw in _PARAGRAPH_SPLIT_RE.split(text):
        paragraph = _normalise_paragraph(raw)
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            units.append(_Unit(paragraph, "\n"))
        else:
            units.extend(_long_paragraph_units(paragraph, max_chars))
    return units


def _long_paragraph_units(paragraph: str, max_chars: int) -> Iterator[_Unit]:
    for line in paragraph.split("\n"):
        for index, sentence in enumerate(_split_sentences(line)):
            joiner = "\n" if index == 0 else " "
            if len(sentence) <= max_chars:
                yield _Unit(sentence, joiner)
                continue
            for part_index, part in enumerate(_split_at_whitespace(sentence, max_chars)):
                yield _Unit(part, joiner if part_index == 0 else " ")


def _split_sentences(line: str) -> list[str]:
    """Split one line of prose into sentences; conservative around abbreviations."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(line):
        end = match.start(1)
        word = line[start : match.start()].rsplit(" ", 1)[-1]
        if word.casefold() in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
            continue
        sentences.append(line[start:end])
        start = match.end(1)
    sentences.append(line[start:])
    return [sentence.strip() for sentence in sentences if sentence.strip()]


def _split_at_whitespace(sentence: str, max_chars: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for word in sentence.split(" "):
        # A single "word" longer than a chunk (a URL, a base64 blob) is cut hard.
        while len(word) > max_chars:
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:max_chars])
            word = word[max_chars:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= max_chars:
            current = f"{current} {word}"
        else:
            parts.append(current)
            current = word
    if current:
        parts.append(current)
    return parts


def _render(units: list[_Unit]) -> str:
    if not units:
        return ""
    return units[0].text + "".join(f"{unit.joiner}{unit.text}" for unit in units[1:])


def _is_lead_in(unit: _Unit, max_chars: int) -> bool:
    """A short line that introduces what follows ("Our plan does not cover:", a FAQ question)."""
    text = unit.text
    if text.endswith(":"):
        return len(text) <= max_chars // 3
    return text.endswith("?") and unit.joiner == "\n" and len(text) <= max_chars // 6


def _pack(units: list[_Unit], max_chars: int, overlap_chars: int) -> list[str]:
    """Greedily fill chunks; each new chunk re-reads the tail of the previous one."""
    chunks: list[str] = []
    current: list[_Unit] = []
    for unit in units:
        if not current or len(_render([*current, unit])) <= max_chars:
            current.append(unit)
            continue
        rest = [unit]
        # Keep a lead-in with the list or answer it introduces rather than stranding it.
        if _is_lead_in(current[-1], max_chars) and len(_render([current[-1], unit])) <= max_chars:
            rest.insert(0, current.pop())
        tail = ""
        if current:
            previous = _render(current)
            chunks.append(previous)
            budget = max_chars - len(_render(rest)) - len(rest[0].joiner)
            tail = _trailing_sentences(previous, min(overlap_chars, budget))
        current = [_Unit(tail, "\n"), *rest] if tail else rest
    if current:
        chunks.append(_render(current))
    return chunks


def _trailing_sentences(text: str, budget: int) -> str:
    """The longest run of whole trailing sentences within ``budget`` characters.

    Never the whole text: repeating an entire short chunk would only duplicate it.
    """
    if budget <= 0:
        return ""
    pieces: list[tuple[str, str]] = []  # (separator before, sentence)
    for line_index, line in enumerate(text.split("\n")):
        for index, sentence in enumerate(_split_sentences(line)):
            pieces.append(("\n" if line_index and not index else " ", sentence))
    taken = ""
    for index in range(len(pieces) - 1, 0, -1):
        sentence = pieces[index][1]
        candidate = f"{sentence}{pieces[index + 1][0]}{taken}" if taken else sentence
        if len(candidate) > budget:
            break
        taken = candidate
    return taken
