"""Hostile files for the command line: the ACL file, the directory (YAML and CSV), the
evaluation query library and the configuration YAML. Hypothesis writes each file (shapes
near the real formats, mutated, and plain garbage) and runs `bot.cli.main(argv)` — exactly
what the `answerdesk` console script runs — in this process, for many examples; a few runs of
`python -m bot` in a subprocess prove the same end to end.

A file the command refuses ends with exit code 2 and one line on stderr (the evaluation
library: one line per problem, each naming the file, as documented), and nothing is
written: the database's rows and the data dir's files are as before. A file the loader
accepts is the business of the other tests; here it only must not crash the loader."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.cli import main
from bot.commands.common import one_line
from bot.settings import CONFIG_ENV, ConfigError, load_settings
from core.acl import AclFileError, load_policy
from core.directory import DirectoryFileError, load_directory_file
from core.evaluation.library import LibraryError, load_library
from tests.support.cli import run
from tests.support.fuzzing import dict_with, json_values, rows_digest

pytestmark = pytest.mark.fuzz

# The fixture below is module-scoped; each example restores the environment it changes.
FILES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
PRINCIPALS = st.sampled_from(
    ["public", "group:hr", "user:ana@example.com", "group:", "user:not-an-email", "team:x", ""]
)
GLOBS = st.sampled_from(["hr/**", "*.md", "**/board-*.md", "", "[", "a/../b", "/abs/**"])
LEVELS = st.sampled_from(["public", "internal", "confidential", "restricted", "secret", ""])


class Workspace:
    """A data dir with a migrated database, and the files the examples write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "var"
        self.empty = root / "docs"
        self.empty.mkdir()

    def state(self) -> tuple[dict[str, str], list[str]]:
        files = sorted(
            f"{p.relative_to(self.data)}:{p.stat().st_size}"
            for p in self.data.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))
        )
        return rows_digest(self.data / "answerdesk.db"), files

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("fuzz-cli")
    space = Workspace(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANSWERDESK_DATA_DIR", str(space.data))
        patch.delenv(CONFIG_ENV, raising=False)
        people = space.write("seed.yaml", "users:\n  - email: seed@example.com\n    groups: [hr]\n")
        assert cli(["directory", "import", str(people)])[0] == 0  # migrates, one row
        yield space


def cli(argv: list[str]) -> tuple[int, str]:
    """`answerdesk ARGV` in this process: (exit code, stderr). What main() changes for the
    process — the config variable, the logging set-up — is put back afterwards."""
    err = io.StringIO()
    config, logging_setup = os.environ.get(CONFIG_ENV), structlog.get_config()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main(argv)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    else:
        code = 0
    finally:
        if config is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = config
        structlog.configure(**logging_setup)
    return code, err.getvalue()


def refused(space: Workspace, argv: list[str], *, per_problem: str | None = None) -> str:
    before = space.state()
    code, err = cli(argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err[-800:])
    if per_problem is None:
        assert len(lines) == 1, err[-800:]
    else:
        assert lines and all(line.startswith(per_problem) for line in lines), err[-800:]
    assert "Traceback" not in err
    assert space.state() == before, "a refused file changed the stored state"
    return lines[0]


def yaml_text(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


def loaded_by(loader: Callable[[Path], Any], errors: type[Exception], path: Path) -> bool:
    """True when the loader accepts the file; its refusal must be its own error type (any
    other exception would reach the user as a traceback)."""
    try:
        loader(path)
    except errors:
        return False
    return True


garbage = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(yaml_text).map(str.encode),
    st.sampled_from(
        [
            b"",
            b"\xff\xfe\x00",
            b"[unclosed",
            b"- a\n b: c",
            b"&a [*a, *a]",
            b"!!python/object:os.system x",
            b"cases: []\ncases: [{id: a, question: q, as: a@b.co}]\n",  # a repeated key
            b"x: &c [{id: a}]\ncases: [*c, *c]\n",  # aliases
        ]
    ),
)


# --- ACL file -----------------------------------------------------------------------------

ACL_RULES = st.lists(
    st.fixed_dictionaries(
        {"match": GLOBS | json_values},
        optional={
            "allow": st.lists(PRINCIPALS, max_size=3) | json_values,
            "classification": LEVELS | json_values,
        },
    ),
    max_size=3,
)
ACL_FILES = (
    st.fixed_dictionaries(
        {
            "default": st.lists(PRINCIPALS, max_size=2) | json_values,
            "rules": ACL_RULES | json_values,
        }
    )
    .flatmap(dict_with)
    .map(yaml_text)
    .map(str.encode)
)


@FILES
@given(content=ACL_FILES | garbage)
def test_a_bad_acl_file_stops_ingest_with_one_line_and_nothing_written(
    workspace: Workspace, content: bytes
) -> None:
    path = workspace.write("acl.yaml", content)
    if loaded_by(load_policy, AclFileError, path):
        event("accepted")
        return
    event("refused")
    line = refused(workspace, ["ingest", str(workspace.empty), "--acl-file", str(path)])
    assert "ACL" in line or "acl" in line or "rule" in line or "principal" in line.lower(), line


# --- directory ----------------------------------------------------------------------------

USERS = st.lists(
    st.fixed_dictionaries(
        {
            "email": st.sampled_from(["ana@example.com", "ANA@example.com", "not-an-email", ""])
            | json_values
        },
        optional={
            "name": json_values,
            "groups": st.lists(st.sampled_from(["hr", "", "a b", "x:y"]), max_size=3) | json_values,
            "slack_user_id": json_values,
            "slack_team_id": json_values,
            "teams_aad_object_id": json_values,
            "teams_tenant_id": json_values,
            "manager": json_values,
        },
    ),
    max_size=3,
)
CSV_FIELDS = st.lists(
    st.sampled_from(
        ["email", "name", "groups", "slack_user_id", "slack_team_id", "teams_tenant_id", "x", ""]
    ),
    max_size=5,
)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    lines = [",".join(header)] + [",".join(row) for row in rows]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


CSV_FILES = st.builds(
    _csv, CSV_FIELDS, st.lists(st.lists(st.text(max_size=20), max_size=6), max_size=4)
)


@FILES
@given(
    kind=st.sampled_from(["yaml", "csv", "txt"]),
    content=st.fixed_dictionaries({"users": USERS | json_values})
    .flatmap(dict_with)
    .map(yaml_text)
    .map(str.encode)
    | CSV_FILES
    | garbage,
)
def test_a_bad_directory_file_is_refused_with_one_line_and_nothing_imported(
    workspace: Workspace, kind: str, content: bytes
) -> None:
    path = workspace.write(f"people.{kind}", content)
    if loaded_by(load_directory_file, DirectoryFileError, path):
        event("accepted")
        code, err = cli(["directory", "import", str(path)])
        assert code == 0, err  # imported: the other tests check what
        return
    event("refused")
    refused(workspace, ["directory", "import", str(path)])


# --- evaluation library -----------------------------------------------------------------------

CASES = st.lists(
    st.fixed_dictionaries(
        {"question": st.text(max_size=30) | json_values},
        optional={
            "id": json_values,
            "as": st.sampled_from(["ana@example.com", "nobody"]) | json_values,
            "expected_sources": json_values,
            "must_include": json_values,
            "must_not_include": json_values,
            "audience": st.sampled_from(["dm", "channel:C1", "public", "x"]) | json_values,
            "tags": json_values,
            "follow_up": json_values,
        },
    ),
    max_size=3,
)
LIBRARIES = st.fixed_dictionaries(
    {"name": json_values, "cases": CASES | json_values},
    optional={"acl": json_values, "baseline": json_values, "tolerances": json_values},
).flatmap(dict_with)


def _jsonl(library: dict[str, Any]) -> bytes:
    cases = library.pop("cases", [])
    lines = [json.dumps({"library": library})]
    lines += [json.dumps(case) for case in (cases if isinstance(cases, list) else [cases])]
    return "\n".join(lines).encode()


@FILES
@example(kind="yaml", content=b"cases: []\ncases: [{id: a, question: q, as: a@b.co}]\n")
@example(kind="yaml", content=b"x: &c [{id: a}]\ncases: [*c, *c]\n")
@given(
    kind=st.sampled_from(["yaml", "jsonl", "json"]),
    content=LIBRARIES.map(yaml_text).map(str.encode) | LIBRARIES.map(_jsonl) | garbage,
)
def test_a_bad_query_library_is_refused_problem_by_problem_and_nothing_runs(
    workspace: Workspace, kind: str, content: bytes
) -> None:
    path = workspace.write(f"library.{kind}", content)
    if loaded_by(load_library, LibraryError, path):
        event("accepted")
        return
    event("refused")
    refused(workspace, ["eval", str(path)], per_problem=f"eval: {one_line(str(path))}:")


# --- configuration ----------------------------------------------------------------------------

SECTIONS = {
    "retrieval": {"top_k": 5, "hybrid": True},
    "models": {"tiers": [{"name": "fast", "model": "openai/x", "api_key_env": "K"}]},
    "policy": {
        "max_question_chars": 4000,
        "prohibited_topics": [{"name": "t", "patterns": ["a("], "message": "m"}],
    },
    "server": {"port": 8080, "body_limits": {"slack": 1024}},
    "slack": {"signing_secret": "in the file", "bot_token": "xoxb"},
    "handoff": {"provider": "jira"},
    "admin": {"password": "x"},
    "database_url": "nowhere",
    "chroma_url": "ftp://x",
    "data_dir": 5,
}
CONFIGS = (
    st.dictionaries(
        st.sampled_from(sorted(SECTIONS)) | st.text(max_size=8) | st.integers() | st.booleans(),
        st.sampled_from(sorted(SECTIONS))
        .map(SECTIONS.get)
        .flatmap(lambda v: dict_with(v) if isinstance(v, dict) else st.just(v))
        | json_values,
        max_size=3,
    )
    .map(yaml_text)
    .map(str.encode)
)


@FILES
@given(content=CONFIGS | garbage)
def test_a_bad_configuration_file_stops_a_command_with_one_line_naming_the_problem(
    workspace: Workspace, content: bytes
) -> None:
    path = workspace.write("answerdesk.yaml", content)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONFIG_ENV, str(path))
        try:
            load_settings()
        except ConfigError:
            accepted = False
        else:
            accepted = True
    if accepted:
        event("accepted")
        return
    event("refused")
    line = refused(workspace, ["--config", str(path), "directory", "show", "ana@example.com"])
    assert "ANSWERDESK_CONFIG" in line or "invalid configuration" in line or "secret" in line, line


# --- the same, end to end -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "argv"),
    [
        (
            "acl.yaml",
            b"default: [public]\nrules: [{match: '[', allow: [team:x]}]\n",
            ["ingest", "{docs}", "--acl-file", "{file}"],
        ),
        (
            "people.csv",
            b"email,groups,shoe_size\nana@example.com,hr,42\n",
            ["directory", "import", "{file}"],
        ),
        ("bytes.yaml", b"\xff\xfe\x00\x80", ["--config", "{file}", "directory", "show", "a@b.co"]),
        ("keys.yaml", b"5: five\n", ["--config", "{file}", "directory", "show", "a@b.co"]),
    ],
)
def test_bad_files_in_a_subprocess_exit_2_with_one_line_and_nothing_written(
    tmp_path: Path, name: str, content: bytes, argv: list[str]
) -> None:
    (tmp_path / "docs").mkdir()
    path = tmp_path / name
    path.write_bytes(content)
    args = [a.format(file=path, docs=tmp_path / "docs") for a in argv]
    done = run(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and "Traceback" not in done.stderr
    assert len(lines) == 1 or all(line.startswith(f"eval: {path}:") for line in lines), lines
    assert not (tmp_path / "var" / "answerdesk.db").exists()  # nothing migrated or written
