"""The extractive tier (core.answering.extractive): quoted, cited, deterministic."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from core.answering.citations import check_citations
from core.answering.extractive import (
    LABEL,
    extract_answer,
    shorten,
    sources_only,
    split_sentences,
    stem,
)

VACATION = [
    "# Time off\nOur leave policy applies to all full-time staff. New employees accrue 15 "
    "vacation days per year. Unused days roll over, up to a limit of 5 days.\n"
    "- Requests go through the HR portal.\n- Managers approve requests within 3 business days.",
    "Sick leave is separate from vacation. Employees receive 10 sick days each year. "
    "A doctor's note is required after three consecutive sick days.",
    "Parking is free at the main office. Badges are issued on the first day.",
]
QUESTION = "How many vacation days do new employees get?"
BULLET = re.compile(r"^• “(.+)” \[(\d+)\]$")


def bullets(text: str) -> list[tuple[str, int]]:
    lines = text.split("\n")
    assert lines[0] == LABEL
    found = [BULLET.match(line) for line in lines[1:]]
    assert all(found), text
    return [(m.group(1), int(m.group(2))) for m in found if m]


def test_picks_the_sentence_that_answers() -> None:
    answer = extract_answer(QUESTION, VACATION)
    quoted = bullets(answer.text)
    assert ("New employees accrue 15 vacation days per year.", 1) in quoted
    assert "Parking" not in answer.text


def test_label_says_these_are_quotes() -> None:
    text = extract_answer(QUESTION, VACATION).text
    assert text.startswith(LABEL)
    assert "quoted" in LABEL.lower() and "no generated summary" in LABEL


def test_every_bullet_cited_and_cited_matches_bullets() -> None:
    answer = extract_answer(QUESTION, VACATION)
    numbers = [n for _, n in bullets(answer.text)]
    assert answer.cited == tuple(dict.fromkeys(numbers))
    assert numbers == sorted(numbers)  # ordered by source rank
    check = check_citations(answer.text, len(VACATION))
    assert check.ok and check.invalid == ()


def test_bullet_bounds() -> None:
    for low, high in [(1, 1), (2, 2), (2, 4), (3, 5)]:
        answer = extract_answer(QUESTION, VACATION, min_bullets=low, max_bullets=high)
        assert low <= len(bullets(answer.text)) <= high


def test_min_bullets_limited_by_available_sentences() -> None:
    answer = extract_answer("vacation days?", ["New employees accrue 15 vacation days."])
    assert len(bullets(answer.text)) == 1


def test_deterministic() -> None:
    first = extract_answer(QUESTION, VACATION)
    assert all(extract_answer(QUESTION, VACATION) == first for _ in range(5))


def test_question_outside_the_sources_vocabulary_quotes_the_top_sources_openings() -> None:
    answer = extract_answer("Where is the cafeteria menu posted?", VACATION)
    assert bullets(answer.text) == [
        ("Our leave policy applies to all full-time staff.", 1),
        ("Sick leave is separate from vacation.", 2),
    ]


def test_question_in_vocabulary_prefers_matching_sentences_over_openings() -> None:
    answer = extract_answer("Is parking free at the office?", VACATION, min_bullets=1)
    assert bullets(answer.text) == [("Parking is free at the main office.", 3)]


def test_number_bonus_for_quantity_questions() -> None:
    sources = ["Sick days must be reported to a manager.", "Each employee has 10 sick days."]
    answer = extract_answer("How many sick days?", sources, min_bullets=1, max_bullets=1)
    assert bullets(answer.text) == [("Each employee has 10 sick days.", 2)]


def test_near_duplicates_are_skipped() -> None:
    sources = [
        "New employees accrue 15 vacation days per year.",
        "New employees accrue 15 vacation days each year.",
        "Vacation requests need manager approval.",
    ]
    quoted = [q for q, _ in bullets(extract_answer(QUESTION, sources).text)]
    assert len(quoted) == 2
    assert "Vacation requests need manager approval." in quoted


def test_long_sentences_are_shortened_at_a_word_boundary() -> None:
    source = "Vacation days " + "accrue steadily over the whole calendar year " * 20 + "."
    quoted = bullets(extract_answer("vacation days", [source], max_chars=80).text)[0][0]
    assert len(quoted) <= 80 and quoted.endswith("…")
    assert not quoted.endswith(" …")
    assert source.startswith(quoted[:-1])


def test_empty_sources() -> None:
    assert extract_answer(QUESTION, []) == extract_answer(QUESTION, ["", "  \n"])
    answer = extract_answer(QUESTION, [])
    assert (answer.text, answer.cited) == ("", ())


def test_source_footnote_markers_do_not_leak_into_quotes() -> None:
    answer = extract_answer("vacation days", ["New employees accrue 15 vacation days [4]."])
    assert bullets(answer.text) == [("New employees accrue 15 vacation days.", 1)]


def test_sentence_splitting() -> None:
    text = (
        "Claims, e.g. taxis, are paid by Dr. Smith. The cap is $1,500.00 per trip. "
        "Use Form No. 12 for travel.\n- First item\n• Second item here\n"
        "## Heading\nA wrapped\nline continues here."
    )
    assert split_sentences(text) == [
        "Claims, e.g. taxis, are paid by Dr. Smith.",
        "The cap is $1,500.00 per trip.",
        "Use Form No. 12 for travel.",
        "Second item here",
        "A wrapped line continues here.",
    ]  # "First item" is under MIN_WORDS


def test_stem() -> None:
    pairs = [("employees", "employee"), ("accrued", "accrue"), ("policies", "policy")]
    assert all(stem(a) == stem(b) for a, b in pairs)
    assert stem("class") == "class" and stem("apply") == "apply"


def test_shorten() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("one two three four", 12) == "one two…"


def test_sources_only() -> None:
    assert sources_only(["Employee handbook", "Travel\n policy"]) == (
        "The most relevant sources:\n• Employee handbook [1]\n• Travel policy [2]"
    )
    assert sources_only([]) == ""


@given(
    question=st.text(max_size=40),
    sources=st.lists(st.text(alphabet="abc def. Ghi 12\n-", max_size=80), max_size=4),
    low=st.integers(0, 4),
    high=st.integers(1, 5),
)
def test_property_bullets_are_bounded_cited_and_stable(
    question: str, sources: list[str], low: int, high: int
) -> None:
    answer = extract_answer(question, sources, min_bullets=low, max_bullets=high)
    assert answer == extract_answer(question, sources, min_bullets=low, max_bullets=high)
    if not answer.text:
        assert answer.cited == ()
        return
    found = bullets(answer.text)
    assert 1 <= len(found) <= high
    assert answer.cited == tuple(dict.fromkeys(n for _, n in found))
    assert all(1 <= n <= len(sources) for n in answer.cited)


def test_table_rows_are_quoted_whole_with_their_column_names() -> None:
    table = (
        "Figures are for a full-time schedule.\n"
        "| Tenure band | Days per year | Maximum balance |\n"
        "| Less than 2 years | 15 days | 180 hours |\n"
        "| 2 to less than 5 years | 20 days | 240 hours |"
    )
    assert split_sentences(table)[1:] == [
        "Tenure band: Less than 2 years; Days per year: 15 days; Maximum balance: 180 hours",
        "Tenure band: 2 to less than 5 years; Days per year: 20 days; Maximum balance: 240 hours",
    ]
    answer = extract_answer("What is the maximum balance with 2 to less than 5 years?", [table])
    assert "Maximum balance: 240 hours" in answer.text


def test_meaning_counts_where_words_differ() -> None:
    source = (
        "Office visits with specialists are subject to a copay. "
        "Anyone who witnesses violence should notify their supervisor at once."
    )
    question = "I saw a coworker threaten someone in the office, who do I tell?"
    words_only = extract_answer(question, [source], min_bullets=1, max_bullets=1)
    assert "specialists" in words_only.text  # "office" is the only shared word
    by_meaning = extract_answer(
        question,
        [source],
        min_bullets=1,
        max_bullets=1,
        relevance={
            "Office visits with specialists are subject to a copay.": 0.2,
            "Anyone who witnesses violence should notify their supervisor at once.": 0.6,
        },
    )
    assert "notify their supervisor" in by_meaning.text


def test_a_lead_in_is_quoted_with_what_it_introduces() -> None:
    source = (
        "Harborlight matches your contributions each pay period:\n"
        "- 100 percent of the first 3 percent"
    )
    answer = extract_answer("How does Harborlight match contributions?", [source], max_bullets=1)
    assert "each pay period: 100 percent of the first 3 percent" in answer.text
