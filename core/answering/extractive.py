"""The extractive tier: quote the sentences that best match the question, no model involved.

Used when no model can answer (outage, rate limit, budget). It must never invent anything,
so it only quotes, says so, and cites every quote. Scoring is plain lexical overlap: the
retrieved chunks are already the relevant ones, and this only has to find the sentences in
them that carry the question's words. Deterministic: ties fall to source rank, then position.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.answering.citations import strip_markers

LABEL = "Quoted passages from the sources (no generated summary):"
SOURCES_LABEL = "The most relevant sources:"

NEAR_DUPLICATE = 0.7  # Jaccard of word sets above which two sentences say the same thing
EXTRA_BULLET_SHARE = 0.5  # beyond min_bullets, a sentence must score this share of the best
RANK_BONUS = 0.05  # at most; the retriever's order is a weak hint, the question's words win
NUMBER_BONUS = 0.15  # for a sentence with a number when the question asks for a quantity
MIN_WORDS = 3  # shorter fragments ("Yes.", "Overview") are not worth quoting
# Words and meaning both count (measured on the Zava and demo libraries, README): a sentence
# can answer without the question's words ("threaten" / "notify their supervisor").
LEXICAL_WEIGHT = 0.5
SEMANTIC_WEIGHT = 1.0
SEMANTIC_FLOOR = 0.2  # MiniLM similarity below this is unrelated text

_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each few for
    from further get gets got had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours please tell know need want""".split()
)
_ABBREVIATIONS = frozenset(
    """e.g. i.e. dr. mr. mrs. ms. prof. st. vs. inc. ltd. co. corp. jr. sr. fig. approx.
    dept. est. u.s. a.m. p.m. cf. al. jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov.
    dec.""".split()
)
_QUANTITY_QUESTION = re.compile(
    r"\b(?:how\s+(?:much|many|long|often|soon|old|far|fast|quickly)|when|"
    r"what(?:\s+(?:is|are)|'s|’s)\s+the\s+(?:[\w-]+\s+){0,3}?"
    r"(?:limit|maximum|minimum|max|min|cap|deadline|amount|rate|cost|price|fee|number|"
    r"deductible|copay|coinsurance|salary|range|stipend|allowance|balance|share)s?"
    r"|limits?|deadlines?)\b",
    re.IGNORECASE,
)
# (suffix, replacement, minimum word length); the first suffix that matches decides.
_SUFFIXES = (
    ("ies", "y", 5),
    ("sses", "ss", 5),
    ("shes", "sh", 5),
    ("ches", "ch", 5),
    ("xes", "x", 5),
    ("zes", "z", 5),
    ("s", "", 4),
    ("ing", "", 6),
    ("ed", "", 5),
    ("ly", "", 6),
)
_SUFFIX_EXCEPTIONS = {"s": ("ss", "us", "is"), "ly": ("ply",)}  # class, status, apply
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+▪◦‣]|\d{1,3}[.)])\s+(.*)$")
_HEADING_LINE = re.compile(r"^\s*#{1,6}\s")
_ROW_MARK = "\x00row\x00"  # marks a table row among the blocks: it is never split further
# A sentence ends at . ! ? … (and any closing quote or bracket) before a capital or digit.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


@dataclass(frozen=True, slots=True)
class ExtractiveAnswer:
    text: str
    cited: tuple[int, ...]  # original 1-based source numbers, in order of appearance


@dataclass(frozen=True, slots=True)
class _Sentence:
    source: int  # 1-based rank of the source
    position: int  # index within its source
    text: str
    stems: frozenset[str]
    words: frozenset[str]


def extract_answer(
    question: str,
    sources: Sequence[str],
    *,
    max_bullets: int = 4,
    min_bullets: int = 2,
    max_chars: int = 300,
    relevance: Mapping[str, float] | None = None,
) -> ExtractiveAnswer:
    """Quote up to `max_bullets` sentences of `sources` (in rank order) that answer `question`.
    `relevance` maps a sentence to its embedding similarity with the question, when known."""
    max_bullets = max(1, max_bullets)
    min_bullets = max(0, min(min_bullets, max_bullets))
    sentences = [
        _sentence(n, position, text)
        for n, source in enumerate(sources, start=1)
        for position, text in enumerate(split_sentences(source))
    ]
    if not sentences:
        return ExtractiveAnswer(text="", cited=())
    scores = _score(question, sentences, len(sources), relevance or {})
    chosen = _select(sentences, scores, max_bullets, min_bullets)
    if not chosen:  # min_bullets=0 and nothing matched: a bare label would say nothing
        return ExtractiveAnswer(text="", cited=())
    chosen.sort(key=lambda s: (s.source, s.position))
    following = {(s.source, s.position): s for s in sentences}
    taken = {(s.source, s.position) for s in chosen}
    bullets = []
    for s in chosen:
        text = s.text
        after = following.get((s.source, s.position + 1))
        # A lead-in ("Harborlight matches your contributions:") or a question used as a
        # heading ("How Long Does Care Last?") is quoted with the sentence that answers it.
        if (
            text.endswith((":", "?"))
            and after is not None
            and (s.source, s.position + 1) not in taken
        ):
            text = f"{text} {after.text}"
        bullets.append(f"• “{shorten(text, max_chars)}” [{s.source}]")
    cited = tuple(dict.fromkeys(s.source for s in chosen))
    return ExtractiveAnswer(text="\n".join([LABEL, *bullets]), cited=cited)


def sources_only(titles: Sequence[str]) -> str:
    """The last resort: just the titles of the retrieved sources, cited in rank order."""
    if not titles:
        return ""
    lines = [f"• {' '.join(t.split()) or 'Untitled'} [{n}]" for n, t in enumerate(titles, 1)]
    return "\n".join([SOURCES_LABEL, *lines])


def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk's text; each list item is a sentence of its own, headings dropped,
    and each table row one sentence that names its columns ("Tenure band: 2 to less than 5
    years; Days per year: 20 days"), so a quoted row says what its figures are."""
    blocks: list[str] = []
    current: list[str] = []
    header: list[str] | None = None
    for line in text.splitlines():
        cells = _table_cells(line)
        if cells is not None:
            blocks.append(" ".join(current))
            current = []
            if header is None:
                header = cells
            else:
                blocks.append(_ROW_MARK + _row_sentence(header, cells))
            continue
        header = None
        item = _LIST_ITEM.match(line)
        if not line.strip() or item or _HEADING_LINE.match(line):
            blocks.append(" ".join(current))
            current = [item.group(1)] if item else []
        else:
            current.append(line)  # a wrapped line continues the paragraph or list item
    blocks.append(" ".join(current))
    out: list[str] = []
    for block in blocks:
        if block.startswith(_ROW_MARK):
            out.append(strip_markers(block[len(_ROW_MARK) :]))
        else:
            out.extend(_split_block(strip_markers(block)))
    return out


def _table_cells(line: str) -> list[str] | None:
    stripped = line.strip()
    if not stripped.startswith("|"):
        return None
    return [" ".join(cell.split()) for cell in stripped.strip("|").split("|")]


def _row_sentence(header: list[str], cells: list[str]) -> str:
    """A table row with its column names; a row of another width keeps its cells only."""
    if len(header) != len(cells):
        return "; ".join(c for c in cells if c)
    return "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=True) if c)


def _score(
    question: str,
    sentences: Sequence[_Sentence],
    source_count: int,
    relevance: Mapping[str, float],
) -> list[float]:
    """Question-term coverage weighted by IDF over the sentences, the sentence's similarity
    in meaning to the question (when known), plus small bonuses.

    A sentence sharing no term with the question and not close to it in meaning scores 0,
    bonuses included, so rank and numbers only order sentences that are about the question.
    """
    terms = sorted(stems(question))  # sorted: float sums must not depend on set order
    df = Counter(t for s in sentences for t in s.stems)
    idf = {t: math.log(1 + len(sentences) / df[t]) for t in terms if df[t]}
    # Words of the question that no sentence has still count: one shared word out of six is
    # weak evidence, not full coverage.
    unseen = math.log(1 + len(sentences))
    total = sum(idf.get(t, unseen) for t in terms)
    wants_number = bool(_QUANTITY_QUESTION.search(question))
    scores = []
    for s in sentences:
        overlap = sum(idf[t] for t in idf if t in s.stems)
        meaning = max(0.0, relevance.get(s.text, 0.0) - SEMANTIC_FLOOR)
        if not overlap and not meaning:
            scores.append(0.0)
            continue
        rank = RANK_BONUS * (source_count - s.source + 1) / source_count
        number = NUMBER_BONUS if wants_number and any(c.isdigit() for c in s.text) else 0.0
        lexical = overlap / total if total else 0.0
        scores.append(LEXICAL_WEIGHT * lexical + SEMANTIC_WEIGHT * meaning + rank + number)
    return scores


def stems(text: str) -> frozenset[str]:
    """Stemmed content words of `text`, stopwords dropped."""
    return frozenset(stem(w) for w in words(text) if w not in _STOPWORDS)


def words(text: str) -> list[str]:
    found = (w.lower().replace("’", "'") for w in _WORD.findall(text))
    return [w.removesuffix("'s") for w in found]


def stem(word: str) -> str:
    """A deliberately tiny suffix stripper: enough to match "employees" with "employee" and
    "accrued" with "accrue"; wrong stems are harmless as long as both sides get the same."""
    for suffix, keep, min_len in _SUFFIXES:
        if word.endswith(suffix) and len(word) >= min_len:
            if not word.endswith(_SUFFIX_EXCEPTIONS.get(suffix, ())):
                word = word[: len(word) - len(suffix)] + keep
            break
    # A final "e" comes and goes with suffixes (accrue, accrued), so it never counts.
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 1)]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-–—") + "…"


def _sentence(source: int, position: int, text: str) -> _Sentence:
    return _Sentence(source, position, text, stems(text), frozenset(words(text)))


def _split_block(block: str) -> list[str]:
    text = " ".join(block.split())
    pieces, start = [], 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if _is_abbreviation(text[start:end].rstrip(), text[end : end + 1]):
            continue
        pieces.append(text[start:end].strip())
        start = end
    pieces.append(text[start:].strip())
    return [p for p in pieces if len(words(p)) >= MIN_WORDS]


def _is_abbreviation(piece: str, following: str) -> bool:
    """Whether `piece` ends in an abbreviation or an initial rather than a sentence."""
    last = piece.rsplit(" ", 1)[-1].lstrip("(\"'“‘[")
    if last.lower() in ("no.", "nos."):  # "Form No. 12", but "The answer is no. We…"
        return following.isdigit()
    return last.lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]\.", last) is not None


def _select(
    sentences: Sequence[_Sentence], scores: Sequence[float], most: int, least: int
) -> list[_Sentence]:
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    best = scores[ranked[0]]
    chosen: list[_Sentence] = []
    for i in ranked:
        if len(chosen) >= most or not scores[i]:
            break
        if len(chosen) >= least and scores[i] < EXTRA_BULLET_SHARE * best:
            break
        _add_distinct(chosen, sentences[i])
    # Too few matches: fill with the opening sentences of the top sources, which usually
    # state what the document is about.
    fill = sorted(sentences, key=lambda s: (s.position, s.source))
    return _fill(chosen, fill, least)


def _fill(chosen: list[_Sentence], candidates: Iterable[_Sentence], least: int) -> list[_Sentence]:
    for s in candidates:
        if len(chosen) >= least:
            break
        _add_distinct(chosen, s)
    return chosen


def _add_distinct(chosen: list[_Sentence], sentence: _Sentence) -> None:
    if all(_jaccard(sentence.words, c.words) <= NEAR_DUPLICATE for c in chosen):
        chosen.append(sentence)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
