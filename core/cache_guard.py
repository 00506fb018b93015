"""The decisive-token guard: two questions that differ in a decisive detail never share a
cached answer, however similar their embeddings.

Measured on tests/data/cache_pairs.jsonl with MiniLM: near-misses ("managers" vs
"contractors", "Basic" vs "Plus", "3 years" vs "10 years") score *higher* cosine than true
paraphrases, so similarity alone cannot separate them. Decisive tokens are numbers (and
number words), qualifiers (roles, plans, places, time, direction, negation) and Title-case
names that are not sentence-initial. A question's decisive token missing from the other
question's words rejects the pair.
"""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a an the i me my mine we our us you your it its this that these those there here is are
    was were be been am do does did doing have has had can could should would will shall may
    might must to of for in on at by with from into onto about as and or but if so than then s
    t d ll ve re m how what whats when where who whom which why get got""".split()
)
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
_NUMBER_WORDS.update(
    {
        word: str(value)
        for value, word in enumerate(
            "_ _ second third fourth fifth sixth seventh eighth ninth tenth".split()
        )
        if word != "_"
    }
)
_SYNONYMS = {
    "raise": "increase",
    "reduce": "decrease",
    "lower": "decrease",
    "begin": "start",
    "stop": "end",
    "fewer": "less",
    "cannot": "not",
    "annual": "year",
    "annually": "year",
    "yearly": "year",
    "years": "year",
    "monthly": "month",
    "months": "month",
    "weekly": "week",
    "weeks": "week",
    "quarterly": "quarter",
    "quarters": "quarter",
}
QUALIFIERS = frozenset(
    """manager contractor intern executive director supervisor temp seasonal parttime fulltime
    basic plus premium hmo ppo hdhp family individual single spouse dependent child
    domestic international overseas abroad state country store warehouse headquarters hq
    today tomorrow yesterday tonight next last previous prior upcoming current first
    weekend weekday summer winter spring autumn year month week quarter
    january february march april may june july august september october november december
    increase decrease remove start end enable disable before more less
    not no never without none""".split()
)
_TITLE = re.compile(r"[A-Z][a-z]+")


def _normalise(token: str) -> str:
    word = token.lower()
    word = _NUMBER_WORDS.get(word, word)
    word = _SYNONYMS.get(word, word)
    if word not in QUALIFIERS and word.endswith("s") and word[:-1] in QUALIFIERS:
        word = word[:-1]  # managers → manager
    return word


def analyse(text: str) -> tuple[set[str], set[str]]:
    """(all normalised content tokens, the decisive ones)."""
    s = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 5,000 → 5000
    s = re.sub(r"n't\b", " not", s)  # don't → do not
    s = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", "", s)  # part-time → parttime, Wi-Fi → WiFi
    tokens: set[str] = set()
    decisive: set[str] = set()
    for number in re.findall(r"\d+", s):
        tokens.add("#" + number)
        decisive.add("#" + number)
    for sentence in re.split(r"[.?!;]+", s):
        for index, token in enumerate(re.findall(r"\w+", sentence)):
            if token.isdigit():
                continue
            word = _normalise(token)
            if word.isdigit():  # five → 5
                tokens.add("#" + word)
                decisive.add("#" + word)
                continue
            if word in STOPWORDS:
                continue
            tokens.add(word)
            if word in QUALIFIERS or (index > 0 and _TITLE.fullmatch(token)):
                decisive.add(word)
    return tokens, decisive


def decisive_difference(a: str, b: str) -> list[str]:
    """Decisive tokens of either question that the other lacks (empty: the guard passes)."""
    tokens_a, decisive_a = analyse(a)
    tokens_b, decisive_b = analyse(b)
    return sorted((decisive_a - tokens_b) | (decisive_b - tokens_a))
