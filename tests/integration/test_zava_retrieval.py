"""Acceptance on the public Zava corpus, through the real CLI: ingest with an ACL file, then
search and evaluate as different users. Retrieval and answer quality are measured and
asserted here, with the Zava query library (tests/data/zava_questions.jsonl) as yardstick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.evaluation.library import Case, load_library
from tests.conftest import REPO, ZAVA

DATA = REPO / "tests" / "data"
LIBRARY = DATA / "zava_questions.jsonl"
# Measured on the library's 65 standalone answerable questions (hybrid, k=5, at most two
# passages per document): page 0.938, file 0.985 (without that limit: 0.908 / 0.938).
# Asserted with a margin of two questions so that a real regression fails and noise does not.
MIN_PAGE_RECALL = 0.90
MIN_FILE_RECALL = 0.95
# `answerdesk eval` on the whole library, extractive tier: must-include 0.818 (0.742 before
# the sentence scoring of the evaluation issue), page recall@5 0.939. The target for
# page recall@5, 0.97, is not reached yet; this asserts what is, less two questions.
MIN_MUST_INCLUDE = 0.75
MIN_EVAL_PAGE_RECALL = 0.90

pytestmark = pytest.mark.slow


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSWERDESK_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def zava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ZAVA.is_dir():
        pytest.skip(f"Zava corpus not found at {ZAVA}")
    data_dir = tmp_path_factory.mktemp("zava") / "var"
    done = cli(data_dir, "ingest", str(ZAVA), "--acl-file", str(DATA / "zava_acl.yaml"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["added"] == 7
    assert summary["skipped"] == ["LICENSE"]
    assert cli(data_dir, "directory", "import", str(DATA / "zava_users.csv")).returncode == 0
    return data_dir


def search_all(data_dir: Path, email: str, queries: list[str]) -> list[dict]:
    path = data_dir.parent / f"queries-{email}.txt"
    path.write_text("\n".join(queries) + "\n")
    done = cli(data_dir, "search", "--file", str(path), "--as", email, "-k", "5")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def answerable() -> list[Case]:
    """Standalone questions with a source that answers them (follow-ups need their thread)."""
    cases = load_library(LIBRARY).cases
    return [c for c in cases if c.expected_sources and not c.conversation]


def test_recall_at_5_on_zava(zava_dir: Path) -> None:
    questions = answerable()
    assert len(questions) >= 60
    results = search_all(zava_dir, "hr@zava.example", [q.question for q in questions])
    page_hits = file_hits = 0
    for case, result in zip(questions, results, strict=True):
        assert result["query"] == case.question
        [expected] = case.expected_sources
        hits = [(h["source"], h["page"]) for h in result["hits"]]
        file_ok = any(source == expected.name for source, _ in hits)
        pages = expected.pages
        page_hits += file_ok and (not pages or any((expected.name, p) in hits for p in pages))
        file_hits += file_ok
    page_recall, file_recall = page_hits / len(questions), file_hits / len(questions)
    print(
        f"\nZava recall@5 over {len(questions)} questions: page {page_recall:.3f}, "
        f"file {file_recall:.3f}"
    )
    assert page_recall >= MIN_PAGE_RECALL
    assert file_recall >= MIN_FILE_RECALL


def test_outsiders_never_see_a_restricted_file(zava_dir: Path) -> None:
    role_questions = [
        q.question for q in answerable() if q.expected_sources[0].name == "role_library.pdf"
    ]
    role_questions.append("job description for a role in the role library")
    for email, allowed in (
        ("hr@zava.example", True),
        ("ops@zava.example", False),
        ("x@y.io", False),
    ):
        results = search_all(zava_dir, email, role_questions)
        seen = {h["source"] for r in results for h in r["hits"]}
        assert ("role_library.pdf" in seen) is allowed, email
        assert all(len(r["hits"]) == 5 for r in results)  # outsiders still get a full top-k
    unknown = search_all(zava_dir, "x@y.io", ["vision benefits"])[0]
    assert unknown["principals"] == ["public"]
    assert "unknown user" in unknown["note"]


def test_page_accurate_hits(zava_dir: Path) -> None:
    result = search_all(zava_dir, "ops@zava.example", ["PerksPlus yoga classes reimbursement"])[0]
    top = result["hits"][0]
    assert top["source"] == "PerksPlus.pdf"
    assert isinstance(top["page"], int) and top["page"] >= 1
    assert set(top) == {
        "chunk_id",
        "document_id",
        "title",
        "source",
        "page",
        "score",
        "classification",
    }


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_library_expectations_are_on_the_expected_pages() -> None:
    """Every must-include phrase of the Zava library is printed on one of the expected pages
    of the expected file (read with pypdf, independently of the ingestion parser), and the
    library has every kind of case."""
    if not ZAVA.is_dir():
        pytest.skip(f"Zava corpus not found at {ZAVA}")
    from pypdf import PdfReader

    library = load_library(LIBRARY)
    assert len(library.cases) >= 60
    tags = {tag for case in library.cases for tag in case.tags}
    assert {"common", "hard", "ambiguous", "adversarial", "acl", "unanswerable"} <= tags
    assert {"multilingual", "follow-up", "channel", "handoff"} <= tags
    pages: dict[str, list[str]] = {}
    for path in ZAVA.iterdir():
        if path.suffix == ".pdf":
            pages[path.name] = [_flat(p.extract_text() or "") for p in PdfReader(path).pages]
        elif path.suffix == ".md":
            pages[path.name] = [_flat(path.read_text())]
    checked = 0
    for case in library.cases:
        for source in case.expected_sources:
            assert source.name in pages, (case.id, source.name)
            texts = pages[source.name]
            where = [texts[p - 1] for p in source.pages] if source.pages else texts
            for phrase in case.must_include:
                # A PDF line break may fall inside a phrase ("1-" / "800-555-1212"), so the
                # phrase is also looked for with all spaces removed.
                squeezed = phrase.text.replace(" ", "").lower()
                assert any(
                    phrase.found_in(text) or squeezed in text.replace(" ", "").lower()
                    for text in where
                ), (case.id, phrase.text)
                checked += 1
    assert checked >= 60


def test_the_zava_library_through_eval(zava_dir: Path, tmp_path: Path) -> None:
    """The extractive tier (no model configured, the default every new user meets) on the
    Zava library: the floors item 7 of the evaluation issue set, and no leak."""
    report = tmp_path / "report"
    done = cli(zava_dir, "eval", str(LIBRARY), "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((report / "summary.json").read_text())
    print("\n" + done.stdout)
    assert summary["generation"]["permission_leaks"] == 0
    assert summary["generation"]["citation_validity"] == 1.0
    assert summary["generation"]["must_include_rate"] >= MIN_MUST_INCLUDE
    assert summary["retrieval"]["page_recall@5"] >= MIN_EVAL_PAGE_RECALL
