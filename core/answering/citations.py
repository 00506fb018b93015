"""Citation markers in a model's answer: parse, validate against the sources, renumber.

The model is asked to cite sources as `[n]`. What comes back varies (`[1, 3]`, `[1][3]`,
`[2-4]`, `[^2]`, `【2】`, `[Source 2]`), sometimes points at sources that do not exist,
and sometimes ends with its own "Sources:" list. `check_citations` reduces all of that to
`[n]`/`[n, m]` markers numbered 1..m in order of first appearance, so the citations shown
to the reader can be listed in the same order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Ranges longer than this are more likely prose ("pages [1-50]") than a citation list; their
# endpoints are still read as sources so nothing out of range survives unchecked.
MAX_RANGE = 10

# 1–3 digits only: a bracketed year such as [2024] is text, never a citation.
_NUM = r"\d{1,3}"
_ITEM = rf"{_NUM}(?:\s*[-–—]\s*{_NUM})?"
_LIST = rf"{_ITEM}(?:\s*,\s*{_ITEM})*"
# `(?!\()`: `[1](https://…)` is a Markdown link, not a citation.
_GROUP = rf"(?:\[\^?\s*(?:sources?\s*:?\s*)?{_LIST}\s*\]|【\s*{_LIST}\s*】)(?!\()"
# A run is one or more groups side by side (`[1][3]`, `[1] [3]`), rewritten as one marker.
# `(?<!\])`: `[text][1]` is a Markdown reference link.
_RUN = re.compile(
    rf"(?P<lead>[ \t]*)(?<!\])(?P<run>{_GROUP}(?:[ \t]*{_GROUP})*)(?P<trail>[ \t]*)",
    re.IGNORECASE,
)
_ITEM_RE = re.compile(rf"({_NUM})(?:\s*[-–—]\s*({_NUM}))?")
# Markers inside code are code (`items[0]`), so code spans are left alone.
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)

_SOURCES_WORD = r"(?:sources?|references?|citations?)(?:\s+(?:used|cited))?"
_EMPH = r"(?:\*\*|__|\*|_)?"
_HEADING = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?{_EMPH}\s*{_SOURCES_WORD}\s*:?\s*{_EMPH}\s*:?\s*$", re.IGNORECASE
)
# "Sources: [1], [2]" on one line.
_INLINE_HEADING = re.compile(
    rf"^\s*{_EMPH}\s*{_SOURCES_WORD}\s*{_EMPH}\s*:\s*{_EMPH}\s*(?:{_GROUP}[\s,;]*)+\.?\s*$",
    re.IGNORECASE,
)
# A line of the model's own source list: it starts with a marker or a list number
# ("[1] Handbook", "- [^2]: Policy", "3. Travel guide"). Plain bullets are not enough, so a
# genuine answer section headed "References" with ordinary bullets is never dropped.
_LIST_LINE = re.compile(
    rf"^\s*(?:[-*•+]\s*)?(?:\[\^?\s*{_NUM}\s*\]:?|【\s*{_NUM}\s*】|{_NUM}[.)]\s)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class CitationCheck:
    text: str  # markers renumbered 1..m in order of first appearance, invalid ones removed
    cited: tuple[int, ...]  # original source numbers cited, in order of first appearance
    invalid: tuple[int, ...]  # marker numbers that pointed nowhere, in order, no repeats

    @property
    def ok(self) -> bool:
        return bool(self.cited)


def check_citations(text: str, source_count: int) -> CitationCheck:
    """Validate and renumber the citation markers of `text` against `source_count` sources."""
    body = strip_sources_list(text)
    code = [m.span() for m in _CODE.finditer(body)]
    renumber: dict[int, int] = {}  # original source number -> new number, in appearance order
    invalid: dict[int, None] = {}  # an ordered set

    def replace(m: re.Match[str]) -> str:
        if _inside(m.start("run"), code):
            return m.group(0)
        valid = []
        for n in marker_numbers(m.group("run")):
            if 1 <= n <= source_count:
                valid.append(renumber.setdefault(n, len(renumber) + 1))
            else:
                invalid.setdefault(n)
        if valid:
            return f"{m.group('lead')}{_format(valid)}{m.group('trail')}"
        return _removal(body, m)

    out = _RUN.sub(replace, body)
    return CitationCheck(text=out.strip(), cited=tuple(renumber), invalid=tuple(invalid))


def strip_markers(text: str) -> str:
    """`text` without citation markers (e.g. a quoted passage's own footnote references)."""
    return _RUN.sub(lambda m: _removal(text, m), text)


def marker_numbers(run: str) -> list[int]:
    """The numbers of a marker run in written order, small ranges expanded."""
    numbers: list[int] = []
    for item in _ITEM_RE.finditer(run):
        low = int(item.group(1))
        if item.group(2) is None:
            numbers.append(low)
            continue
        low, high = sorted((low, int(item.group(2))))
        if high - low + 1 <= MAX_RANGE:
            numbers.extend(range(low, high + 1))
        else:
            numbers.extend((low, high))
    return numbers


def strip_sources_list(text: str) -> str:
    """`text` without a trailing "Sources:"/"References:" list that the model added.

    Only a final block is removed, and only when every line after the heading is blank or
    starts with a marker or a list number: the sources are listed separately anyway.
    """
    lines = text.rstrip().split("\n")
    i = len(lines) - 1
    while i >= 0 and (not lines[i].strip() or _LIST_LINE.match(lines[i])):
        i -= 1
    if i < 0:
        return text
    listed = i < len(lines) - 1
    if _INLINE_HEADING.match(lines[i]) or (_HEADING.match(lines[i]) and listed):
        return "\n".join(lines[:i]).rstrip()
    return text


def _format(numbers: list[int]) -> str:
    return "[" + ", ".join(str(n) for n in sorted(set(numbers))) + "]"


def _removal(text: str, m: re.Match[str]) -> str:
    """What replaces a marker run with no valid source: the whitespace before it goes too,
    and at the start or end of a line the whitespace after it as well."""
    at_line_start = m.start() == 0 or text[m.start() - 1] == "\n"
    at_line_end = m.end() == len(text) or text[m.end()] == "\n"
    return "" if at_line_start or at_line_end else m.group("trail")


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)
