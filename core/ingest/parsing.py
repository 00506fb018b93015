"""Turn source files (Markdown, plain text, HTML, PDF) into titled, sectioned plain text.

The output keeps just enough structure for retrieval: reading order, the page a passage came
from (so answers can cite "p. 12") and the headings enclosing it (so a chunk about "Dental"
still knows it sits under "Benefits"). Heading text lives in ``heading_path`` only, never in
``Section.text``; whoever embeds a chunk should prepend the path if it wants it searchable.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import MappingProxyType
from typing import Any

import frontmatter
import yaml
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from pypdf import PdfReader

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ParseError",
    "ParsedDocument",
    "Section",
    "parse_bytes",
    "parse_file",
    "title_from_stem",
]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}
)

_EMPTY_REASON = "empty document (no extractable text)"
_PDF_REASON = "corrupt or unreadable PDF"
# Enough to catch executables, images and archives without reading a whole large file.
_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Section:
    """A block of body text: one or more paragraphs separated by blank lines."""

    text: str
    page: int | None
    heading_path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    sections: tuple[Section, ...]
    front_matter: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class ParseError(Exception):
    """The file cannot be turned into text; ``str(error)`` is a short reason for humans."""


def parse_file(path: Path) -> ParsedDocument:
    """Parse a file on disk, using its name (minus extension) as the fallback title."""
    suffix = _normalise_suffix(path.suffix)
    # Reject unsupported types before reading: they may be large binaries.
    if suffix not in SUPPORTED_SUFFIXES:
        raise ParseError(_unsupported_reason(suffix))
    try:
        data = path.read_bytes()
    except OSError as exc:
        # One unreadable file should be reported like any other bad file, not abort a crawl.
        raise ParseError(f"cannot read file: {exc.strerror or exc}") from exc
    return parse_bytes(data, suffix, title_from_stem(path.stem) or path.name)


def parse_bytes(data: bytes, suffix: str, fallback_title: str) -> ParsedDocument:
    """Parse raw file content; ``suffix`` (".md", ".pdf", ...) selects the format."""
    kind = _normalise_suffix(suffix)
    if kind not in SUPPORTED_SUFFIXES:
        raise ParseError(_unsupported_reason(kind))
    if not data.strip():
        raise ParseError(_EMPTY_REASON)
    fallback = _clean_inline(fallback_title) or "Untitled"
    if kind == ".pdf":
        doc = _parse_pdf(data, fallback)
    else:
        text = _decode_text(data)
        if kind in (".md", ".markdown"):
            doc = _parse_markdown(text, fallback)
        elif kind in (".html", ".htm"):
            doc = _parse_html(text, fallback)
        else:
            doc = _parse_plain_text(text, fallback)
    if not any(section.text.strip() for section in doc.sections):
        raise ParseError(_EMPTY_REASON)
    return doc


def title_from_stem(stem: str) -> str:
    """A readable title from a file stem: "employee_handbook-2024" -> "employee handbook 2024"."""
    return _clean_inline(re.sub(r"[_\-]+", " ", stem))


# --------------------------------------------------------------------------- shared helpers

_SPACE_RE = re.compile(r"[ \t\f\v\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# Zero-width characters and soft hyphens are invisible in the source but split words.
_INVISIBLE_RE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+•●▪◦‣·–]|\d{1,9}[.)])\s+")
_TABLE_ROW_RE = re.compile(r"^\s*\|")
_QUOTE_RE = re.compile(r"^\s*>")


def _normalise_suffix(suffix: str) -> str:
    suffix = suffix.strip().lower()
    if suffix and not suffix.startswith("."):
        suffix = "." + suffix
    return suffix


def _unsupported_reason(suffix: str) -> str:
    return f"unsupported file type {suffix or '(no extension)'}"


def _clean_inline(text: str) -> str:
    """Collapse all whitespace runs in a single line of text."""
    text = _CONTROL_RE.sub("", _INVISIBLE_RE.sub("", text))
    return _SPACE_RE.sub(" ", text.replace("\n", " ").replace("\r", " ")).strip()


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        raise ParseError("binary file")
    try:
        # utf-8-sig so that files saved by Windows editors (with a BOM) are accepted.
        return _normalise_newlines(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ParseError("not valid UTF-8 text") from exc


def _is_structural_line(line: str) -> bool:
    """Lines that start a new visual line even without a blank line before them."""
    return bool(_LIST_ITEM_RE.match(line) or _TABLE_ROW_RE.match(line) or _QUOTE_RE.match(line))


def _unwrap_lines(lines: list[str]) -> str:
    """Re-join hard-wrapped prose while keeping list items and table rows on their own lines."""
    out: list[str] = []
    for raw in lines:
        line = _clean_inline(raw)
        if not line:
            continue
        if out and not _is_structural_line(raw) and not _TABLE_ROW_RE.match(out[-1]):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out)


class _SectionCollector:
    """Accumulates paragraphs under the current heading and cuts a Section at each change."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._paragraphs: list[str] = []
        self._line_kind: str | None = None
        self.page: int | None = None
        self.heading_path: tuple[str, ...] = ()

    def add(self, paragraph: str) -> None:
        paragraph = paragraph.strip()
        if paragraph:
            self._paragraphs.append(paragraph)
            self._line_kind = None

    def add_line(self, line: str, kind: str) -> None:
        """Consecutive lines of the same kind (list items, table rows) form one paragraph."""
        line = line.strip()
        if not line:
            return
        if self._paragraphs and self._line_kind == kind:
            self._paragraphs[-1] = f"{self._paragraphs[-1]}\n{line}"
        else:
            self._paragraphs.append(line)
        self._line_kind = kind

    def flush(self) -> None:
        if self._paragraphs:
            text = "\n\n".join(self._paragraphs)
            self.sections.append(Section(text, self.page, self.heading_path))
        self._paragraphs = []
        self._line_kind = None

    def set_heading_path(self, path: tuple[str, ...]) -> None:
        self.flush()
        self.heading_path = path


class _HeadingStack:
    """Maps numbered heading levels (h1..h6) to an outermost-first path."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, text: str) -> tuple[str, ...]:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        return tuple(title for _, title in self._stack)


# --------------------------------------------------------------------------------- Markdown

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC_BREAK_RE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
# "|---|:---:|" rows only draw the table; they carry no words worth embedding.
_TABLE_RULE_RE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_MD_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPHASIS_RE = re.compile(r"(\*\*|__|`)")


def _load_front_matter(text: str) -> tuple[dict[str, Any], str]:
    handler = frontmatter.YAMLHandler()
    if not handler.detect(text):
        return {}, text
    try:
        raw, content = handler.split(text)
    except ValueError:
        # An opening "---" with no closing one is a thematic break, not front matter.
        return {}, text
    try:
        metadata = handler.load(raw)
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or type(exc).__name__
        raise ParseError(f"invalid front matter: {reason}") from exc
    if metadata is None:
        return {}, content
    if not isinstance(metadata, dict):
        raise ParseError("invalid front matter: expected key/value pairs")
    return {str(key): value for key, value in metadata.items()}, content


def _clean_md_heading(text: str) -> str:
    text = _MD_IMAGE_RE.sub(r"\1", text)
    text = _MD_LINK_RE.sub(r"\1", text)
    return _clean_inline(_MD_EMPHASIS_RE.sub("", text)).strip("*_ ")


def _parse_markdown(text: str, fallback_title: str) -> ParsedDocument:
    metadata, body = _load_front_matter(text)
    out = _SectionCollector()
    headings = _HeadingStack()
    first_h1: str | None = None
    block: list[str] = []
    code: list[str] = []
    fence: str | None = None

    def flush_block() -> None:
        out.add(_unwrap_lines(block))
        block.clear()

    def flush_code() -> None:
        out.add("\n".join(line.rstrip() for line in code).strip("\n"))
        code.clear()

    def heading(level: int, title: str) -> None:
        nonlocal first_h1
        title = _clean_md_heading(title)
        if not title:
            return
        if level == 1 and first_h1 is None:
            first_h1 = title
        out.set_heading_path(headings.push(level, title))

    for line in body.split("\n"):
        if fence is not None:
            stripped = line.strip()
            # A fence closes only with the same character, at least as long as the opener.
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                flush_code()
                fence = None
            else:
                code.append(line)
            continue
        if match := _FENCE_RE.match(line):
            flush_block()
            fence = match.group(1)
            continue
        if match := _ATX_RE.match(line):
            flush_block()
            heading(len(match.group(1)), match.group(2) or "")
            continue
        setext = _SETEXT_RE.match(line)
        if setext and len(block) == 1 and not _is_structural_line(block[0]):
            title = block.pop()
            heading(1 if setext.group(1).startswith("=") else 2, title)
            continue
        if not line.strip() or _THEMATIC_BREAK_RE.match(line):
            flush_block()
            continue
        if _TABLE_RULE_RE.match(line) and "|" in line:
            continue
        block.append(line)
    if fence is not None:
        flush_code()  # an unclosed fence runs to the end of the document
    flush_block()
    out.flush()

    fm_title = _clean_inline(str(metadata.get("title") or ""))
    title = fm_title or first_h1 or fallback_title
    return ParsedDocument(title, tuple(out.sections), MappingProxyType(metadata))


# ------------------------------------------------------------------------------- plain text

_BLANK_LINE_RE = re.compile(r"\n[ \t\f\v]*\n")


def _is_text_heading(line: str) -> bool:
    """ALL CAPS lines and short "Label:" lines read as headings in plain-text documents."""
    if not line or len(line) > 80 or len(line.split()) > 10 or _is_structural_line(line):
        return False
    letters = [char for char in line if char.isalpha()]
    if len(letters) >= 2 and all(char.isupper() for char in letters):
        return True
    return (
        line.endswith(":")
        and line.count(":") == 1
        and len(line) <= 60
        and len(line.split()) <= 8
        and line[0].isupper()
    )


def _parse_plain_text(text: str, fallback_title: str) -> ParsedDocument:
    out = _SectionCollector()
    blocks = [block for block in _BLANK_LINE_RE.split(text) if block.strip()]
    for index, block in enumerate(blocks):
        lines = [line for line in block.split("\n") if line.strip()]
        first = _clean_inline(lines[0])
        has_body_after = len(lines) > 1 or index + 1 < len(blocks)
        if has_body_after and _is_text_heading(first):
            out.set_heading_path((first.rstrip(":").strip(),))
            lines = lines[1:]
        out.add(_unwrap_lines(lines))
    out.flush()
    return ParsedDocument(fallback_title, tuple(out.sections))


# ------------------------------------------------------------------------------------- HTML

_HTML_DROP_TAGS = ("script", "style", "nav", "header", "footer", "noscript", "template", "svg")
_HTML_SKIP_TAGS = frozenset({"head", "title", "meta", "link", "base"})
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_LEAF_BLOCKS = frozenset(
    {"p", "dt", "dd", "caption", "figcaption", "address", "summary", "legend"}
)
_HTML_CONTAINERS = frozenset(
    {
        "html",
        "body",
        "main",
        "article",
        "section",
        "div",
        "aside",
        "blockquote",
        "ul",
        "ol",
        "dl",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "figure",
        "form",
        "fieldset",
        "details",
        "center",
    }
)
_HTML_BLOCKS = _HTML_LEAF_BLOCKS | _HTML_CONTAINERS | set(_HTML_HEADINGS) | {"li", "tr", "pre"}


def _html_inline_text(node: Tag) -> str:
    """Text of an element with source whitespace collapsed but <br> kept as a line break."""
    parts: list[str] = []
    for item in node.descendants:
        if isinstance(item, Tag) and item.name == "br":
            parts.append("\n")
        elif isinstance(item, NavigableString) and not isinstance(item, PreformattedString):
            parts.append(re.sub(r"\s+", " ", str(item)))
    lines = (_clean_inline(line) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


class _HtmlWalker:
    def __init__(self) -> None:
        self.out = _SectionCollector()
        self.first_h1: str | None = None
        self._headings = _HeadingStack()
        self._inline: list[str] = []

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, PreformattedString):
                continue  # comments, doctype, CDATA
            if isinstance(child, NavigableString):
                self._inline.append(re.sub(r"\s+", " ", str(child)))
            elif isinstance(child, Tag):
                self._visit(child)

    def finish(self) -> list[Section]:
        self._flush_inline()
        self.out.flush()
        return self.out.sections

    def _visit(self, tag: Tag) -> None:
        name = tag.name
        if name in _HTML_SKIP_TAGS:
            return
        if name == "br":
            self._inline.append("\n")
            return
        if name not in _HTML_BLOCKS:
            self.walk(tag)  # inline element: its text joins the surrounding paragraph
            return
        self._flush_inline()
        if name in _HTML_HEADINGS:
            self._heading(_HTML_HEADINGS[name], _clean_inline(tag.get_text(" ")))
        elif name == "li":
            self._list_item(tag)
        elif name == "tr":
            cells = [_clean_inline(cell.get_text(" ")) for cell in tag.find_all(["td", "th"])]
            if any(cells):
                self.out.add_line(" | ".join(cells), "row")
        elif name == "pre":
            self.out.add(tag.get_text().strip("\n"))
        elif name in _HTML_LEAF_BLOCKS:
            self.out.add(_html_inline_text(tag))
        else:
            self.walk(tag)
            self._flush_inline()

    def _heading(self, level: int, title: str) -> None:
        if not title:
            return
        if level == 1 and self.first_h1 is None:
            self.first_h1 = title
        self.out.set_heading_path(self._headings.push(level, title))

    def _list_item(self, item: Tag) -> None:
        own: list[str] = []
        nested: list[Tag] = []
        for child in item.children:
            if isinstance(child, Tag) and child.name in ("ul", "ol"):
                nested.append(child)
            elif isinstance(child, Tag):
                own.append(child.get_text(" "))
            elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
                own.append(str(child))
        text = _clean_inline(" ".join(own))
        if text:
            self.out.add_line(f"- {text}", "item")
        for sub_list in nested:
            self.walk(sub_list)

    def _flush_inline(self) -> None:
        lines = (_clean_inline(line) for line in "".join(self._inline).split("\n"))
        self.out.add("\n".join(line for line in lines if line))
        self._inline = []


def _parse_html(text: str, fallback_title: str) -> ParsedDocument:
    soup = BeautifulSoup(text, "html.parser")
    # An <svg><title> is a tooltip, not the page title.
    title_tag = soup.find(lambda tag: tag.name == "title" and tag.find_parent("svg") is None)
    html_title = _clean_inline(title_tag.get_text(" ")) if title_tag else ""
    for tag in soup.find_all(_HTML_DROP_TAGS):
        tag.decompose()
    walker = _HtmlWalker()
    walker.walk(soup.body or soup)
    sections = walker.finish()
    title = html_title or walker.first_h1 or fallback_title
    return ParsedDocument(title, tuple(sections))


# -------------------------------------------------------------------------------------- PDF

_PYPDF_LOGGER = logging.getLogger("pypdf")
_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_pypdf_level = logging.NOTSET


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Mute pypdf's logger (it warns about every repaired xref) while we parse.

    Reference-counted so that concurrent parses restore the caller's level only once.
    """
    global _quiet_depth, _saved_pypdf_level
    with _quiet_lock:
        if _quiet_depth == 0:
            _saved_pypdf_level = _PYPDF_LOGGER.level
            _PYPDF_LOGGER.setLevel(logging.CRITICAL + 1)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                _PYPDF_LOGGER.setLevel(_saved_pypdf_level)


_JUNK_TITLE_RE = re.compile(
    r"^(?:microsoft (?:word|powerpoint|excel)\b|untitled\b|document\s*\d*$|slide \d+$"
    r"|powerpoint presentation$)|\.(?:docx?|pdf|pptx?|xlsx?|rtf|odt|txt)$",
    re.IGNORECASE,
)
_PAGE_NUMBER_RE = re.compile(r"(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?", re.IGNORECASE)
_PDF_BULLET_RE = re.compile(r"^(?:[•●▪◦‣·■□➢►✓\-–*]|\d{1,3}[.)])\s+")
_HYPHENATED_RE = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)+")
_LINE_END_FRAGMENT_RE = re.compile(r"[A-Za-z][A-Za-z-]*-$")
_LINE_START_WORD_RE = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
_NUMBER_BREAK_RE = re.compile(r"(?:^|[\s(])\d{1,4}-$")
# Lower-case words that still count as Title Case ("Summary of Your Costs").
_MINOR_WORDS_TEXT = (
    "a an and as at but by for from in into nor of off on or our per the their to up via vs "
    "with your its out over under"
)
_MINOR_WORDS = frozenset(_MINOR_WORDS_TEXT.split())
_CAPS_LEVEL, _TITLE_LEVEL = 1, 2


def _read_pdf(data: bytes) -> tuple[list[str], str]:
    """Page texts and the metadata title; any pypdf failure becomes a ParseError."""
    with _quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(data))
            # Many "encrypted" PDFs only carry an owner password and open with an empty one.
            if reader.is_encrypted and not reader.decrypt(""):
                raise ParseError(_PDF_REASON)
            pages = [page.extract_text() or "" for page in reader.pages]
            metadata = reader.metadata
            meta_title = str(metadata.title or "") if metadata else ""
        except ParseError:
            raise
        except Exception as exc:  # pypdf raises a zoo of types on broken input
            raise ParseError(_PDF_REASON) from exc
    if not pages:
        raise ParseError(_PDF_REASON)
    return pages, meta_title


def _pdf_lines(page_text: str) -> list[str]:
    """Cleaned lines of one page; blank strings mark paragraph gaps."""
    page_text = _normalise_newlines(page_text).replace("\u00ad\n", "")
    lines = [_clean_inline(line) for line in page_text.split("\n")]
    # Bare page numbers are furniture, not content.
    return ["" if _PAGE_NUMBER_RE.fullmatch(line) else line for line in lines]


def _typical_line_width(pages: list[list[str]]) -> int:
    lengths = sorted(len(line) for lines in pages for line in lines if line)
    if not lengths:
        return 0
    return lengths[int(0.9 * (len(lengths) - 1))]


def _hyphenated_vocabulary(pages: list[list[str]]) -> frozenset[str]:
    return frozenset(
        word.lower() for lines in pages for line in lines for word in _HYPHENATED_RE.findall(line)
    )


def _join_wrapped(left: str, right: str, vocabulary: frozenset[str]) -> str:
    """Join two visual lines of one paragraph, undoing end-of-line hyphenation."""
    if _NUMBER_BREAK_RE.search(left) and right[:1].isdigit():
        return f"{left}{right}"  # a phone number or range broken after its hyphen: "1-" "800…"
    head_match = _LINE_END_FRAGMENT_RE.search(left)
    tail_match = _LINE_START_WORD_RE.match(right)
    if not head_match or not tail_match:
        return f"{left} {right}"
    head = head_match.group()[:-1]
    tail = tail_match.group()
    # Keep the hyphen for real compounds ("out-of-network", "Non-Participating", or a
    # hyphenated spelling that occurs elsewhere in the document); otherwise it is a
    # typesetting break ("bene-" + "fits").
    keep = "-" in head or right[0].isupper() or f"{head}-{tail}".lower() in vocabulary
    return f"{left}{right}" if keep else f"{left[:-1]}{right}"


def _heading_level(line: str) -> int | None:
    """Conservative shape test: a short Title Case or ALL CAPS line without end punctuation."""
    if not 2 <= len(line) <= 80 or not line[0].isalpha() or not line[0].isupper():
        return None
    if line[-1] in ".,;:!?" or ":" in line or _PDF_BULLET_RE.match(line):
        return None
    words = line.split()
    # Addresses and codes ("PO Box 1234") are not section titles.
    if any(sum(char.isdigit() for char in word) >= 3 for word in words):
        return None
    alpha_words = [word for word in words if word[0].isalpha()]
    # Table rows ("Deductible $500 $1,000") are mostly numbers.
    if len(words) > 10 or 3 * len(alpha_words) < 2 * len(words):
        return None
    letters = [char for char in line if char.isalpha()]
    if len(letters) >= 3 and all(char.isupper() for char in letters):
        return _CAPS_LEVEL
    if all(word[0].isupper() or word.lower() in _MINOR_WORDS for word in alpha_words):
        return _TITLE_LEVEL
    return None


def _pdf_heading_at(
    lines: list[str], index: int, short_limit: float, after_list_item: bool
) -> int | None:
    """Level of ``lines[index]`` if it is a heading in context, else None."""
    level = _heading_level(lines[index])
    if level is None:
        return None
    previous = lines[index - 1] if index > 0 else ""
    # After a full-width line that does not end a sentence we are mid-paragraph. List items
    # rarely end with punctuation, and their wrapped tails start lower-case, so skip the test.
    mid_paragraph = len(previous) >= short_limit and previous[-1] not in ".!?"
    if previous and mid_paragraph and not after_list_item:
        return None
    # "send the request to:" introduces content (an address), not a new section.
    if previous.endswith(":"):
        return None
    following = list(islice(filter(None, lines[index + 1 :]), 4))
    if not following or following[0][0].islower():
        return None
    # Require body text on the same page, allowing a couple of stacked headings first;
    # this keeps cover pages and lists of names from becoming headings.
    for line in following:
        if _heading_level(line) is None:
            return level
    return None


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


class _PdfHeadings:
    """Heading path for PDFs, where only the text (not the font size) is known.

    An ALL CAPS heading starts a new top-level path; a Title Case one sits under the last
    ALL CAPS heading, replacing any previous Title Case sibling. Headings stacked with no
    body between them ("Senior Manager of Sales" / "Job Description") nest, since the first
    is usually the more specific one to keep.
    """

    _MAX_DEPTH = 4

    def __init__(self) -> None:
        self.path: tuple[str, ...] = ()
        self._has_major = False
        self._stacked: list[str] = []  # Title Case headings since the last body line

    def push(self, level: int, title: str) -> tuple[str, ...]:
        known_words = {word for part in self.path for word in _words(part)}
        # Inside a stack, a running header ("COVERED SERVICES - Dialysis") or a repeated line
        # adds nothing to the path.
        in_stack = self._stacked or (self._has_major and len(self.path) == 1)
        if in_stack and _words(title) <= known_words:
            return self.path
        if self.path and title.casefold() == self.path[-1].casefold():
            return self.path
        if level == _CAPS_LEVEL:
            # An ALL CAPS chapter title adopts the Title Case lines stacked just above it.
            self.path, self._has_major = (title, *self._stacked)[: self._MAX_DEPTH], True
        elif self._stacked:
            self.path = (*self.path, title)[: self._MAX_DEPTH]
            self._stacked.append(title)
        else:
            self.path = (self.path[0], title) if self._has_major else (title,)
            self._stacked.append(title)
        return self.path

    def body_seen(self) -> None:
        self._stacked.clear()


def _pdf_page_sections(
    lines: list[str],
    page: int,
    out: _SectionCollector,
    headings: _PdfHeadings,
    short_limit: float,
    vocabulary: frozenset[str],
) -> None:
    out.page = page
    paragraph: str | None = None
    paragraph_is_item = False
    previous_line = ""

    def flush() -> None:
        nonlocal paragraph
        if paragraph is not None:
            if paragraph_is_item:
                out.add_line(paragraph, "item")
            else:
                out.add(paragraph)
        paragraph = None

    for index, line in enumerate(lines):
        if not line:
            flush()
            previous_line = ""
            continue
        level = _pdf_heading_at(lines, index, short_limit, paragraph_is_item)
        if level is not None:
            flush()
            path = headings.push(level, line)
            if path != out.heading_path:
                out.set_heading_path(path)
            previous_line = ""
            paragraph_is_item = False
            continue
        headings.body_seen()
        is_item = bool(_PDF_BULLET_RE.match(line))
        # A short "Responsibilities:" label after a finished sentence stands on its own.
        is_label = (
            line.endswith(":") and len(line) < short_limit and previous_line[-1:] in (".", "!", "?")
        )
        starts_paragraph = (
            paragraph is None
            or is_item
            or is_label
            or (len(previous_line) < short_limit and not line[0].islower())
        )
        if starts_paragraph:
            flush()
            paragraph, paragraph_is_item = line, is_item
        else:
            paragraph = _join_wrapped(paragraph or "", line, vocabulary)
        previous_line = line
    flush()
    out.flush()


def _pdf_title(meta_title: str, first_page: list[str], fallback_title: str) -> str:
    meta_title = _clean_inline(meta_title)
    if (
        meta_title
        and any(c.isalnum() for c in meta_title)
        and not _JUNK_TITLE_RE.search(meta_title)
    ):
        return meta_title
    lines = [line for line in first_page if line]
    if not lines:
        return fallback_title
    # A cover page ("Zava" / "Employee Handbook") reads as one title across its few lines.
    cover = " ".join(lines)
    if len(lines) <= 4 and len(cover) < 100:
        return cover
    return lines[0] if len(lines[0]) < 100 else fallback_title


def _parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    page_texts, meta_title = _read_pdf(data)
    pages = [_pdf_lines(text) for text in page_texts]
    # Lines clearly shorter than the usual wrap width end a paragraph (or are headings).
    short_limit = 0.75 * _typical_line_width(pages)
    vocabulary = _hyphenated_vocabulary(pages)
    out = _SectionCollector()
    headings = _PdfHeadings()
    for number, lines in enumerate(pages, start=1):
        _pdf_page_sections(lines, number, out, headings, short_limit, vocabulary)
    title = _pdf_title(meta_title, pages[0], fallback_title)
    return ParsedDocument(title, tuple(out.sections))
