"""The README's examples, run the way a reader runs them: copied into files and passed to
the real CLI in a subprocess, from the repository root."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

from bot.settings import Settings
from tests.support.cli import REPO, run
from tests.support.pdf import make_pdf

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    following = README.find("\n### ", start + len(title))
    ends = [e for e in (end, following) if e != -1]
    return README[start : min(ends) if ends else len(README)]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def commands(block: str) -> list[tuple[dict[str, str], list[str]]]:
    """`VAR=value … .venv/bin/answerdesk ARGS` lines as (environment, arguments)."""
    out = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if ".venv/bin/answerdesk" not in words:
            continue
        at = words.index(".venv/bin/answerdesk")
        env = dict(word.split("=", 1) for word in words[:at])
        out.append((env, words[at + 1 :]))
    return out


def test_the_demo_commands(tmp_path: Path) -> None:
    """Load the demo from the command line, then search as two users: the HR user finds
    the compensation bands, the other does not."""
    demo = [b for b in blocks(section("## The two commands"), "sh") if "search" in b]
    steps = commands(demo[0])
    assert [args[0] for _, args in steps] == ["directory", "ingest", "search", "search", "ask"]
    outputs = []
    for env, args in steps:
        done = run(tmp_path, *args, env=env, cwd=REPO)
        assert done.returncode == 0, (args, done.stderr)
        outputs.append(done.stdout)
    priya, jordan, answer = outputs[2:]
    assert "Compensation" in priya and "group:hr" in priya
    assert "Compensation" not in jordan and "hr/" not in jordan
    assert "[1]" in answer and "request" in answer


def test_acl_file_and_directory_examples(tmp_path: Path) -> None:
    """The ACL file and the directory file of the README, as written there, decide who
    reads what."""
    [acl] = blocks(section("### ACL file"), "yaml")
    directory = section("### Directory")
    [people] = blocks(directory, "yaml")
    [people_csv] = blocks(directory, "csv")
    (tmp_path / "acl.yaml").write_text(acl)
    (tmp_path / "people.yaml").write_text(people)
    (tmp_path / "people.csv").write_text(people_csv)
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "salary-review.md").write_text(
        "# Salary review\n\nThe salary review committee meets every March to set pay bands.\n"
    )
    (docs / "library").mkdir()
    (docs / "library" / "role_library.pdf").write_bytes(
        make_pdf([["Role library: every salary band and role level for engineers."]])
    )
    (docs / "travel.md").write_text(
        "# Travel\n\nBook trains for trips under four hours; the salary of travel is time.\n"
    )
    for file in ("people.yaml", "people.csv"):
        done = run(tmp_path, "directory", "import", str(tmp_path / file))
        assert done.returncode == 0, done.stderr
    done = run(tmp_path, "ingest", str(docs), "--acl-file", str(tmp_path / "acl.yaml"))
    assert done.returncode == 0, done.stderr

    def readable(email: str) -> set[str]:
        done = run(tmp_path, "search", "salary bands", "--as", email, "--json", "-k", "10")
        assert done.returncode == 0, done.stderr
        return {hit["document_id"] for hit in json.loads(done.stdout)["hits"]}

    everything = {"hr/salary-review.md", "library/role_library.pdf", "travel.md"}
    assert readable("ana.lopez@example.com") == everything  # group hr
    # The rule's user:ceo@example.com is not in the directory: unknown people get public only.
    assert readable("ceo@example.com") == {"travel.md"}
    assert readable("sam.okafor@example.com") == {"travel.md"}  # finance: the default only
    shown = run(tmp_path, "directory", "show", "sam.okafor@example.com", "--json")
    assert json.loads(shown.stdout)["principals"] == [
        "group:finance",
        "public",
        "user:sam.okafor@example.com",
    ]


def test_config_check_example(tmp_path: Path) -> None:
    """`config check` as the Configuration section shows it, on the example file."""
    configuration = section("## Configuration")
    [config] = blocks(configuration, "yaml")
    (tmp_path / "answerdesk.yaml").write_text(config)
    [(env, args)] = commands(next(b for b in blocks(configuration, "sh") if "config" in b))
    env = {k: "sk-test" if v == "sk-…" else v for k, v in env.items()}
    done = run(tmp_path, *args, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "OPENAI_API_KEY is set" in done.stdout


def test_the_evaluation_library_example(demo_settings: Settings, tmp_path: Path) -> None:
    """The library of the README's Evaluation section, saved at the repository root as the
    README says, runs against the demo data and passes its own expectations."""
    [example] = blocks(section("### Library format"), "yaml")
    (tmp_path / "bot" / "demo").mkdir(parents=True)
    shutil.copy(REPO / "bot" / "demo" / "acl.yaml", tmp_path / "bot" / "demo" / "acl.yaml")
    library = tmp_path / "demo-smoke.yaml"
    library.write_text(example)
    report = tmp_path / "out"
    env = {"ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)}
    done = run(tmp_path, "eval", str(library), "--report", str(report), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((report / "summary.json").read_text())
    assert summary["library"] == "demo-smoke" and summary["cases"] == 3
    cases = {c["id"]: c for c in map(json.loads, (report / "cases.jsonl").open())}
    assert cases["guest-wifi"]["failed"] == [], cases["guest-wifi"]
    assert cases["salary-band-denied"]["leaks"] == []
    assert summary["generation"]["must_not_include_rate"] == 1.0


def test_the_busy_replicas_example(tmp_path: Path) -> None:
    """The answer queue of "Busy replicas", as a configuration file `config check` reads."""
    [example] = blocks(section("### Busy replicas"), "yaml")
    (tmp_path / "answerdesk.yaml").write_text(example)
    env = {"ANSWERDESK_CONFIG": str(tmp_path / "answerdesk.yaml")}
    done = run(tmp_path, "config", "check", "--json", env=env)
    assert done.returncode == 0, done.stderr
    queue = json.loads(done.stdout)["effective"]["answer_queue"]
    assert queue == {"max_concurrent": 8, "max_waiting": 200, "max_wait_s": 60}
    bad = tmp_path / "bad.yaml"
    bad.write_text(example.replace("max_waiting: 200", "max_waiting: -1"))
    refused = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(bad)})
    assert refused.returncode == 2 and "answer_queue.max_waiting" in refused.stderr
