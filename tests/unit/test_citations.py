"""Citation checking (core.answering.citations): marker forms, validation, renumbering."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.answering.citations import check_citations, marker_numbers, strip_markers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fact [1].", "Fact [1]."),
        ("Fact [1, 2].", "Fact [1, 2]."),
        ("Fact [1,2].", "Fact [1, 2]."),
        ("Fact [1][2].", "Fact [1, 2]."),
        ("Fact [1] [2].", "Fact [1, 2]."),
        ("Fact [1-3].", "Fact [1, 2, 3]."),
        ("Fact [1–3].", "Fact [1, 2, 3]."),
        ("Fact [^2].", "Fact [1]."),
        ("Fact 【2】.", "Fact [1]."),
        ("Fact [Source 2].", "Fact [1]."),
        ("Fact [ 1 ].", "Fact [1]."),
    ],
)
def test_marker_forms_are_normalised(text: str, expected: str) -> None:
    assert check_citations(text, 3).text == expected


def test_renumbers_in_order_of_first_appearance() -> None:
    check = check_citations("A [3]. B [1]. C [3, 2]. D [1].", 3)
    assert check.text == "A [1]. B [2]. C [1, 3]. D [2]."
    assert check.cited == (3, 1, 2)
    assert check.invalid == ()
    assert check.ok


def test_group_is_renumbered_deduplicated_and_sorted() -> None:
    check = check_citations("A [3, 1, 3][1].", 3)
    assert check.text == "A [1, 2]."
    assert check.cited == (3, 1)


def test_invalid_markers_are_removed_with_the_space_before() -> None:
    check = check_citations("A [9]. B [2, 7] and C [0] too [9].", 2)
    assert check.text == "A. B [1] and C too."
    assert check.cited == (2,)
    assert check.invalid == (9, 7, 0)


def test_invalid_marker_at_line_start_takes_the_space_after() -> None:
    assert check_citations("[5] Opening.\nNext [1]", 1).text == "Opening.\nNext [1]"


def test_only_invalid_markers_is_not_ok() -> None:
    check = check_citations("Nothing here [4][5].", 3)
    assert check.text == "Nothing here."
    assert check.invalid == (4, 5)
    assert not check.ok


def test_no_markers_is_not_ok() -> None:
    assert not check_citations("Plain answer.", 3).ok


def test_zero_sources_makes_every_marker_invalid() -> None:
    check = check_citations("A [1].", 0)
    assert (check.text, check.cited, check.invalid) == ("A.", (), (1,))


@pytest.mark.parametrize(
    "text",
    [
        "Policy changed in [2024] and again [1999].",
        "See [the handbook](https://example.com/h) for details.",
        "See [1](https://example.com/h) for details.",
        "- [x] done\n- [ ] todo",
        "Reference link [handbook][2].",
        "Code `items[4]` and\n```\nrows[7] = 1\n```",
    ],
)
def test_non_citations_are_left_alone(text: str) -> None:
    check = check_citations(text, 1)
    assert check.text == text
    assert check.cited == check.invalid == ()


def test_long_range_keeps_only_its_endpoints() -> None:
    assert marker_numbers("[1-50]") == [1, 50]
    assert marker_numbers("[3-1]") == [1, 2, 3]
    check = check_citations("Pages [1-50].", 3)
    assert (check.text, check.invalid) == ("Pages [1].", (50,))


@pytest.mark.parametrize(
    "tail",
    [
        "\n\nSources:\n[1] Employee handbook\n[2] Travel policy",
        "\n\n**References:**\n- [1] Employee handbook, p. 3\n- [2] Travel policy",
        "\n\n## Sources\n1. Employee handbook\n2. Travel policy\n",
        "\n\nSources: [1], [2]",
        "\nSources:\n[^1]: Employee handbook",
    ],
)
def test_trailing_sources_list_is_stripped(tail: str) -> None:
    check = check_citations("New hires get 15 days [2]." + tail, 2)
    assert check.text == "New hires get 15 days [1]."
    assert check.cited == (2,)


def test_sources_heading_followed_by_prose_is_kept() -> None:
    text = "Ask HR [1].\n\nReferences:\n- two letters from former managers"
    assert check_citations(text, 1).text == text


def test_sources_list_in_the_middle_is_kept() -> None:
    text = "Sources:\n[1] Handbook\n\nThe answer is yes [1]."
    assert check_citations(text, 1).text == text


def test_strip_markers() -> None:
    assert strip_markers("Days accrue monthly [3]. Rollover [1, 2] is capped.") == (
        "Days accrue monthly. Rollover is capped."
    )


_FILLER = st.text(alphabet="abc xyz.,;!?\n-", max_size=12)
_MARKER = st.one_of(
    st.integers(0, 12).map(lambda n: f"[{n}]"),
    st.integers(0, 12).map(lambda n: f"[^{n}]"),
    st.integers(0, 12).map(lambda n: f"【{n}】"),
    st.lists(st.integers(0, 12), min_size=1, max_size=4).map(
        lambda ns: "[" + ", ".join(map(str, ns)) + "]"
    ),
    st.tuples(st.integers(0, 12), st.integers(0, 12)).map(lambda t: f"[{t[0]}-{t[1]}]"),
)
_OUTPUT_MARKER = re.compile(r"\[(\d+(?:, \d+)*)\]")


@given(
    parts=st.lists(st.tuples(_FILLER, _MARKER), max_size=8),
    end=_FILLER,
    source_count=st.integers(0, 8),
)
def test_property_output_markers_are_renumbered_and_valid(
    parts: list[tuple[str, str]], end: str, source_count: int
) -> None:
    text = "".join(f + m for f, m in parts) + end
    check = check_citations(text, source_count)
    assert set(check.cited) <= set(range(1, source_count + 1))
    assert len(set(check.cited)) == len(check.cited)
    assert all(not 1 <= n <= source_count for n in check.invalid)
    seen: list[int] = []
    for m in _OUTPUT_MARKER.finditer(check.text):
        numbers = [int(n) for n in m.group(1).split(", ")]
        assert numbers == sorted(set(numbers))
        assert all(1 <= n <= len(check.cited) for n in numbers)
        seen.extend(n for n in numbers if n not in seen)
    # New numbers first appear in order 1, 2, 3…, and every cited source appears.
    assert sorted(seen) == seen == list(range(1, len(check.cited) + 1))
    assert "【" not in check.text and "^" not in check.text
    assert check.ok == bool(check.cited)
