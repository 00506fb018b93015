"""Acronyms of a question spelled out from the corpus's headings (core.acronyms)."""

from __future__ import annotations

from core.acronyms import AcronymIndex, acronym_key, spell_out, spelled_out, with_phrases

HEADINGS = [
    ("hr", "Manager of Research and Development"),
    ("hr", "Manager of Human Resources"),
    ("hr", "Director of Human Resources"),
    ("all", "Home Medical Equipment (HME), Orthotics, Prosthetics And Supplies"),
]


def test_keys_are_the_letters() -> None:
    assert acronym_key("R&D") == "RD"
    assert acronym_key("P/L") == "PL"


def test_capitalised_runs_joined_by_connectors_spell_out_their_initials() -> None:
    found = set(spelled_out("Manager of Research and Development"))
    assert ("RD", "Research and Development") in found
    assert ("MRD", "Manager of Research and Development") in found
    # A run never starts or ends on a connector, nor crosses a lower-case word.
    assert not any(p.startswith("of") or p.endswith("and") for _, p in found)
    assert set(spelled_out("Research into Development")) == set()


def test_a_question_is_expanded_with_phrases_its_reader_may_read() -> None:
    index = AcronymIndex.build(HEADINGS)
    question = "For the Manager of R&D position, how many years?"
    found = index.expansions(question, frozenset({"hr", "all"}))
    assert [(e.acronym, e.phrase) for e in found] == [("R&D", "Research and Development")]
    assert spell_out(question, found) == (
        "For the Manager of Research and Development position, how many years?"
    )
    assert with_phrases(question, found) == f"{question} Research and Development"
    # The heading is in a document this reader may not read: nothing is learnt from it.
    assert index.expansions(question, frozenset({"all"})) == []


def test_the_phrase_most_headings_use_wins() -> None:
    index = AcronymIndex.build([*HEADINGS, ("hr", "Health Reimbursement")])
    (found,) = index.expansions("who is our HR contact", frozenset({"hr"}))
    assert found.phrase == "Human Resources"


def test_shouting_unknown_acronyms_and_spelled_out_phrases_are_left_alone() -> None:
    index = AcronymIndex.build(HEADINGS)
    readable = frozenset({"hr", "all"})
    assert index.expansions("WHO IS OUR HR CONTACT", readable) == []
    assert index.expansions("what does the XYZ team do", readable) == []
    assert index.expansions("HR (Human Resources) contact", readable) == []
    assert index.expansions("is COVID-19 testing covered", readable) == []
    (hme,) = index.expansions("is a wheelchair HME?", readable)
    assert hme.phrase == "Home Medical Equipment"
