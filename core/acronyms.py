"""Acronyms in questions, spelled out the way the corpus spells them.

People ask about "the Manager of R&D" where the role library's heading says "Manager of
Research and Development": neither the keyword ranking (which sees the letters "r" and "d")
nor an English sentence embedder connects the two. The corpus's own headings and titles say
what its capitalised phrases are; a phrase whose capitalised words' initials spell the
acronym ("Research and Development" for R&D) is its expansion. The phrases are learnt per
ACL key, and a question is only expanded with phrases from documents its reader may read:
no heading of an unreadable document shapes a query.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# 2 to 6 capitals, "&" or "/" allowed between two of them: HR, PPE, R&D, P/L. Not after or
# before a letter, digit or one of those signs (so "COVID-19" and "L4" are left alone).
_ACRONYM_RE = re.compile(r"(?<![\w&/])([A-Z](?:[&/]?[A-Z]){1,5})(?![\w&/])")
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'’]*|&")
# Words that may join the capitalised words of a name without adding an initial.
_CONNECTORS = frozenset({"and", "&", "of", "for", "the", "in", "on", "to", "with"})
_MIN_LETTERS, _MAX_LETTERS = 2, 6


def acronym_key(acronym: str) -> str:
    """The letters that identify an acronym: "R&D" → "RD"."""
    return "".join(ch for ch in acronym if ch.isalpha()).upper()


def spelled_out(text: str) -> Iterator[tuple[str, str]]:
    """(key, phrase) for every run of capitalised words in `text` (a heading or a title),
    joined by connectors, whose initials could stand for an acronym: "Manager of Research and
    Development" gives ("RD", "Research and Development"), ("MR", "Manager of Research")…"""
    tokens = _TOKEN_RE.findall(text)
    for start, first in enumerate(tokens):
        if not _capitalised(first):
            continue
        initials = ""
        for end in range(start, len(tokens)):
            token = tokens[end]
            if _capitalised(token):
                initials += token[0]
                if len(initials) > _MAX_LETTERS:
                    break
                if len(initials) >= _MIN_LETTERS:
                    yield initials.upper(), " ".join(tokens[start : end + 1])
            elif token.lower() not in _CONNECTORS:
                break


def _capitalised(token: str) -> bool:
    return token[0].isupper() and token.lower() not in _CONNECTORS


@dataclass(frozen=True, slots=True)
class Expansion:
    acronym: str
    phrase: str


@dataclass(slots=True)
class AcronymIndex:
    """Phrases by acronym key and ACL key, counted over the headings and titles they head."""

    phrases: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)

    @classmethod
    def build(cls, headings: Iterable[tuple[str, str]]) -> AcronymIndex:
        """From (ACL key, heading or title) pairs; a phrase counts once per pair."""
        index = cls()
        for acl_key, text in headings:
            for key, phrase in set(spelled_out(text)):
                by_acl = index.phrases.setdefault(key, {})
                by_acl.setdefault(acl_key, Counter())[phrase] += 1
        return index

    def expansions(self, query: str, readable: frozenset[str]) -> list[Expansion]:
        """The spelled-out form of each acronym in `query`, from readable documents only: the
        phrase most headings use (ties: the alphabetically first). A query typed in capitals
        is not read as acronyms, and a phrase the query already holds is not added."""
        letters = [ch for ch in query if ch.isalpha()]
        if not letters or sum(ch.isupper() for ch in letters) > len(letters) / 2:
            return []
        found: list[Expansion] = []
        seen: set[str] = set()
        lowered = query.lower()
        for match in _ACRONYM_RE.finditer(query):
            acronym = match.group(1)
            key = acronym_key(acronym)
            if key in seen:
                continue
            seen.add(key)
            counts: Counter[str] = Counter()
            for acl_key, phrases in self.phrases.get(key, {}).items():
                if acl_key in readable:
                    counts.update(phrases)
            if not counts:
                continue
            phrase = min(counts, key=lambda p: (-counts[p], p))
            if phrase.lower() not in lowered:
                found.append(Expansion(acronym, phrase))
        return found


def spell_out(query: str, expansions: Iterable[Expansion]) -> str:
    """`query` with each acronym replaced by its phrase, for the sentence embedder: it reads
    "Manager of Research and Development" well, and "R&D" or both side by side less well
    (the role library's answer passage: cosine 0.44 against 0.37)."""
    for item in expansions:
        query = re.sub(
            rf"(?<![\w&/]){re.escape(item.acronym)}(?![\w&/])",
            lambda _, phrase=item.phrase: phrase,
            query,
            count=1,
        )
    return query


def with_phrases(query: str, expansions: Iterable[Expansion]) -> str:
    """`query` with each acronym's phrase added, for the keyword ranking: the acronym still
    matches where documents use it, and the phrase where they spell it out."""
    return " ".join([query, *(item.phrase for item in expansions)])
