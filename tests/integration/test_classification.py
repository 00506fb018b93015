"""Document classifications and data boundaries per model tier, the way operators set them
(ACL file, front matter, configuration) and users meet them (CLI, answers from tiers behind
an OpenAI-compatible server)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.db.engine import downgrade_sync, upgrade_sync
from bot.settings import Settings
from bot.wiring import Services, build_services
from core.answering.types import Asker, Audience, Mode, Question
from tests.support.cli import run
from tests.support.model_server import ModelServer

PRIYA = "priya.raman@harborlight.example"  # group:hr
JORDAN = "jordan.kim@harborlight.example"
SALARY = "What is the salary range for an L3 engineer in the Portland area?"
WIFI = "How long does a guest Wi-Fi pass last?"

ACL = """
default: [public]
rules:
  - match: "hr/**"
    allow: ["group:hr"]
    classification: confidential
  - match: "**/minutes.md"
    classification: restricted
"""


def _write_docs(root: Path) -> None:
    (root / "hr").mkdir(parents=True)
    (root / "board").mkdir()
    (root / "hr" / "pay.md").write_text("# Pay\n\nSalary bands are reviewed every March.\n")
    (root / "board" / "minutes.md").write_text("# Minutes\n\nThe board reviewed salary bands.\n")
    (root / "handbook.md").write_text(
        "---\nclassification: Public\n---\n# Handbook\n\nSalary is paid monthly.\n"
    )
    (root / "misc.md").write_text("# Misc\n\nA note on salary advances.\n")


def test_classification_from_front_matter_rules_and_config(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs)
    (tmp_path / "acl.yaml").write_text(ACL)
    (tmp_path / "people.yaml").write_text(
        "users:\n  - {email: ana@example.com, name: Ana, groups: [hr]}\n"
    )
    config = tmp_path / "answerdesk.yaml"
    config.write_text("ingest:\n  default_classification: confidential\n")
    env = {"ANSWERDESK_CONFIG": str(config)}
    assert run(tmp_path, "directory", "import", str(tmp_path / "people.yaml")).returncode == 0
    acl = str(tmp_path / "acl.yaml")
    done = run(tmp_path, "ingest", str(docs), "--acl-file", acl, "--json", env=env)
    assert done.returncode == 0, done.stderr

    def levels() -> dict[str, str]:
        done = run(tmp_path, "search", "salary", "--as", "ana@example.com", "--json", env=env)
        assert done.returncode == 0, done.stderr
        return {h["document_id"]: h["classification"] for h in json.loads(done.stdout)["hits"]}

    assert levels() == {
        "hr/pay.md": "confidential",  # the rule with `allow` and `classification`
        "board/minutes.md": "restricted",  # a rule that only classifies
        "handbook.md": "public",  # front matter (any case) wins
        "misc.md": "confidential",  # no rule: the configured default
    }
    text = run(tmp_path, "search", "salary", "--as", "ana@example.com", env=env).stdout
    assert "restricted)" in text and "public)" in text

    # `ask --json` lists each cited source's classification (extractive tier: no model).
    question = "When are salary bands reviewed?"
    done = run(tmp_path, "ask", question, "--as", "ana@example.com", "--json", env=env)
    answer = json.loads(done.stdout)
    assert answer["citations"], answer
    assert {c["classification"] for c in answer["citations"]} <= {
        "confidential",
        "restricted",
        "public",
    }
    assert all(c["classification"] for c in answer["citations"])

    # A new classification re-ingests the document (no change of content or ACL needed).
    (tmp_path / "acl.yaml").write_text(ACL.replace("confidential", "internal"))
    done = run(tmp_path, "ingest", str(docs), "--acl-file", acl, "--json", env=env)
    report = json.loads(done.stdout)
    assert report["documents"]["updated"] == ["hr/pay.md"] and report["passages_embedded"] == 0
    assert levels()["hr/pay.md"] == "internal"

    # An unknown classification in front matter fails that file only, by name.
    (docs / "bad.md").write_text("---\nclassification: secret\n---\n# Bad\n\nText.\n")
    done = run(tmp_path, "ingest", str(docs), "--acl-file", acl, "--json", env=env)
    assert done.returncode == 1
    [failed] = json.loads(done.stdout)["failed"]
    assert failed["path"] == "bad.md" and "public, internal, confidential" in failed["reason"]


def test_a_malformed_classification_in_the_acl_file_ingests_nothing(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs)
    (tmp_path / "acl.yaml").write_text(ACL.replace("restricted", "top-secret"))
    done = run(tmp_path, "ingest", str(docs), "--acl-file", str(tmp_path / "acl.yaml"))
    assert done.returncode == 2
    assert "rule 2 classification must be one of" in done.stderr


def test_migration_keeps_documents_and_defaults_them(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "a.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade_sync(url, "0005")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO acl_sets (key, principals) VALUES ('k', '[\"public\"]')")
        db.execute(
            "INSERT INTO documents (id, source, root, title, format, content_hash, acl_key, "
            "updated_at, ingested_at, chunk_count) VALUES ('d', 'd.md', '/r', 'D', 'md', 'h', "
            "'k', '2026-01-01', '2026-01-01', 0)"
        )
    upgrade_sync(url)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT classification FROM documents").fetchall() == [("internal",)]
    downgrade_sync(url, "0005")
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(documents)")]
        assert "classification" not in columns
        assert db.execute("SELECT id FROM documents").fetchall() == [("d",)]


# --- data boundaries -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


@pytest.fixture
async def make(
    demo_settings: Settings, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator:
    """Services over the demo corpus (bot/demo/acl.yaml classifies hr/ and finance/
    confidential; the compensation bands' front matter says restricted)."""
    server.reset()
    monkeypatch.setenv("TEST_MODEL_KEY", "k")
    built: list[Services] = []

    async def factory(*tiers: tuple[str, list[str] | None], **cache: object) -> Services:
        specs = []
        for name, allowed in tiers:
            spec: dict = {
                "name": name,
                "model": f"openai/{name}",
                "api_base": server.url,
                "api_key_env": "TEST_MODEL_KEY",
            }
            if allowed is not None:
                spec["allowed_classifications"] = allowed
            specs.append(spec)
        services = await build_services(
            Settings(data_dir=demo_settings.data_dir, models={"tiers": specs}, cache=cache)
        )
        built.append(services)
        return services

    yield factory
    for services in built:
        await services.close()


def ask(text: str, email: str) -> Question:
    return Question(text=text, asker=Asker(email=email), audience=Audience("dm"))


def sent_levels(trace: dict) -> list[tuple[str, list[str]]]:
    return [
        (c["tier"], c["classifications"]) for c in trace["model_calls"] if "classifications" in c
    ]


async def test_a_tier_never_receives_what_it_may_not(make, server: ModelServer) -> None:
    services = await make(("external", ["public", "internal"]), ("selfhosted", None))
    salary = await services.answers.answer(ask(SALARY, PRIYA))
    assert salary.mode == Mode.ANSWER and salary.tier == "selfhosted"
    assert any(c.source.startswith("hr/") for c in salary.citations)
    [boundary] = [n for n in salary.notices if n.code == "data_boundary"]
    assert "'external'" in boundary.message and "'selfhosted' model answered" in boundary.message
    assert server.requests_for("external") == []
    routing = salary.trace["stages"]["routing"]
    assert routing["boundary_changed"] is True
    assert set(routing["boundary"]["external"]) & {"confidential", "restricted"}
    assert "data boundary" in routing["reason"]
    [(tier, levels)] = sent_levels(salary.trace)
    assert tier == "selfhosted" and set(levels) & {"confidential", "restricted"}
    hits = salary.trace["stages"]["retrieval"]["hits"]
    assert {h["classification"] for h in hits} == set(routing["context_classifications"])

    wifi = await services.answers.answer(ask(WIFI, JORDAN))
    assert wifi.tier == "external" and not [n for n in wifi.notices if n.code == "data_boundary"]
    [(tier, levels)] = sent_levels(wifi.trace)
    assert tier == "external" and set(levels) <= {"public", "internal"}


async def test_no_allowed_tier_quotes_the_sources(make, server: ModelServer) -> None:
    services = await make(("external", ["public", "internal"]))
    salary = await services.answers.answer(ask(SALARY, PRIYA))
    assert salary.tier == "extractive" and salary.mode == Mode.DEGRADED
    codes = [n.code for n in salary.notices]
    assert codes == ["data_boundary", "extractive_only"]
    assert "quoted passages are shown instead" in salary.notices[0].message
    assert salary.citations and server.requests == []
    assert salary.trace["stages"]["routing"]["steps"] == []


async def test_cache_entries_record_classifications(make, server: ModelServer) -> None:
    """An answer is cached with the classification of every context chunk (what a lookup
    checks against the tier that wrote it: tests/unit/test_cache_boundary.py)."""
    services = await make(("external", ["public", "internal"]), ("selfhosted", None))
    first = await services.answers.answer(ask(WIFI, JORDAN))
    assert first.tier == "external"
    [entry] = (
        await services.cache_store.load(services.cache_store._collection.get()["ids"])
    ).values()
    assert {c.classification for c in entry.context} <= {"public", "internal"}
    assert all(c.classification for c in entry.context)
    again = await services.answers.answer(ask(WIFI, JORDAN))
    assert again.cache["status"] == "hit"
