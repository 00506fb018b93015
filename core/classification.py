"""Document classifications: how sensitive a document is, which decides which model tiers
may receive its chunks (data boundaries, README "Governance").

Levels, least to most sensitive: public, internal, confidential, restricted. A document gets
its level from Markdown front matter, else the first ACL file rule with a `classification`
that matches it, else the configured default; every chunk inherits its document's level.
"""

from __future__ import annotations

from collections.abc import Iterable

LEVELS: tuple[str, ...] = ("public", "internal", "confidential", "restricted")
ALL_LEVELS: frozenset[str] = frozenset(LEVELS)
DEFAULT_LEVEL = "internal"


class ClassificationError(ValueError):
    """A classification that is not one of LEVELS."""


def parse_level(value: object, where: str = "classification") -> str:
    if not isinstance(value, str) or value.strip().lower() not in ALL_LEVELS:
        raise ClassificationError(f"{where} must be one of {', '.join(LEVELS)} (got {value!r})")
    return value.strip().lower()


def strictest(levels: Iterable[str]) -> str:
    """The most sensitive of `levels` (an unknown level counts as the most sensitive)."""
    rank = -1
    for level in levels:
        rank = max(rank, LEVELS.index(level) if level in ALL_LEVELS else len(LEVELS) - 1)
    if rank < 0:
        raise ValueError("no classification given")
    return LEVELS[rank]


def not_allowed(levels: Iterable[str], allowed: frozenset[str]) -> list[str]:
    """The levels among `levels` that `allowed` does not include, least sensitive first."""
    found = set(levels) - allowed
    return sorted(found, key=lambda lv: LEVELS.index(lv) if lv in ALL_LEVELS else len(LEVELS))
