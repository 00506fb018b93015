"""Word forms: casefolded, accent-free Snowball stems in the question's language, so a
topic pattern "layoff" agrees with "layoffs", "lay-offs" and "Layoffs", and "Entlassung"
with "Entlassungen".

The question's language is detected (py3langid, restricted to the configured languages, so
short questions are not mistaken for a language nobody here writes in). A short question
can be ambiguous: every language the detector needs to reach 90% of its confidence (at most
three), plus the platform's locale when given, is tried. Both sides of a comparison always
go through the same stemmer, so "redundancies" and "redundant" agree (both "redund"), as
stemming does; the benchmark shows where that costs precision (README "Governance").
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

# ISO 639-1 code → Snowball algorithm, for the languages the detector also knows.
SNOWBALL: dict[str, str] = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
}
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "pt", "nl")
_CONFIDENCE = 0.9  # take candidate languages until the detector is this sure
_MAX_CANDIDATES = 3
_WORD = re.compile(r"\w+")
_JOINED_HYPHEN = re.compile(r"(?<=\w)[-‐‑](?=\w)")

Stems = tuple[str, ...]


def supported_languages() -> list[str]:
    """The language codes word forms can be matched in (Snowball stemmer + detector)."""
    import snowballstemmer

    have = set(snowballstemmer.algorithms())
    return sorted(code for code, name in SNOWBALL.items() if name in have)


def fold(text: str) -> str:
    """Casefolded, without accents: "Licenciés" → "licencies"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.cache
def _stemmer(language: str) -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer(SNOWBALL[language])


_STEM_LOCK = threading.Lock()  # Snowball stemmer objects keep state between calls


@functools.lru_cache(maxsize=8192)
def stems(text: str, language: str) -> tuple[Stems, ...]:
    """The text's stem sequences in `language`: split at hyphens, and with hyphens joined
    ("lay-offs" → (lay, off) and (layoff,)); one sequence when the text has none."""
    folded = fold(text)
    variants = [folded]
    joined = _JOINED_HYPHEN.sub("", folded)
    if joined != folded:
        variants.append(joined)
    stemmer = _stemmer(language)
    with _STEM_LOCK:
        return tuple(tuple(stemmer.stemWords(_WORD.findall(v))) for v in variants)


def contains(haystack: Stems, needle: Stems) -> bool:
    """Does `needle` occur in `haystack` as a contiguous run of stems?"""
    n = len(needle)
    if n == 0:
        return False
    first = needle[0]
    return any(
        haystack[i] == first and haystack[i : i + n] == needle for i in range(len(haystack) - n + 1)
    )


class LanguageDetector:
    """Which of the configured languages a question is in (candidates, most likely first)."""

    def __init__(self, languages: Sequence[str]) -> None:
        unknown = [code for code in languages if code not in SNOWBALL]
        if unknown or not languages:
            raise ValueError(
                f"word-form languages must be among {', '.join(supported_languages())} "
                f"(got {', '.join(unknown) or 'none'})"
            )
        self.languages = tuple(dict.fromkeys(languages))
        self._lock = threading.Lock()

    def candidates(self, text: str, locale: str | None = None) -> tuple[str, ...]:
        hint = (locale or "").replace("_", "-").split("-")[0].lower()
        out = [hint] if hint in self.languages else []
        if len(self.languages) == 1:
            return tuple(dict.fromkeys([*out, self.languages[0]]))
        identifier = _identifier(self.languages)
        with self._lock:  # the identifier is not documented as thread-safe
            ranked = identifier.rank(text)
        total = 0.0
        for code, probability in ranked[:_MAX_CANDIDATES]:
            out.append(code)
            total += float(probability)
            if total >= _CONFIDENCE:
                break
        return tuple(dict.fromkeys(out))


@functools.cache
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier
