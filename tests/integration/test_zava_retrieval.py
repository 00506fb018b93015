"""Acceptance on the public Zava corpus, through the real CLI: ingest with an ACL file, then
search as different users. Retrieval quality is measured and asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, ZAVA
from tests.support.recall import load_questions

QUESTIONS = REPO / "tests" / "data" / "zava_questions.jsonl"
# Measured on this set (45 questions, hybrid, k=5): page 0.933, file 0.956. Asserted with a
# margin of two questions so that a real regression fails and noise does not.
MIN_PAGE_RECALL = 0.88
MIN_FILE_RECALL = 0.91

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
    acl = data_dir.parent / "acl.yaml"
    acl.write_text(
        'default: [public]\nrules:\n  - match: "role_library.pdf"\n    allow: ["group:hr"]\n'
    )
    users = data_dir.parent / "users.csv"
    users.write_text("email,name,groups\nhr@zava.example,Hana,hr\nops@zava.example,Omar,ops\n")
    done = cli(data_dir, "ingest", str(ZAVA), "--acl-file", str(acl), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["added"] == 7
    assert summary["skipped"] == ["LICENSE"]
    assert cli(data_dir, "directory", "import", str(users)).returncode == 0
    return data_dir


def search_all(data_dir: Path, email: str, queries: list[str]) -> list[dict]:
    path = data_dir.parent / f"queries-{email}.txt"
    path.write_text("\n".join(queries) + "\n")
    done = cli(data_dir, "search", "--file", str(path), "--as", email, "-k", "5")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_recall_at_5_on_zava(zava_dir: Path) -> None:
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 25
    results = search_all(zava_dir, "hr@zava.example", [q["question"] for q in questions])
    page_hits = file_hits = 0
    for item, result in zip(questions, results, strict=True):
        assert result["query"] == item["question"]
        hits = [(h["source"], h["page"]) for h in result["hits"]]
        file_ok = any(source == item["file"] for source, _ in hits)
        pages = item["pages"]
        page_hits += file_ok and (pages is None or any((item["file"], p) in hits for p in pages))
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
        q["question"] for q in load_questions(QUESTIONS) if q["file"] == "role_library.pdf"
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
