"""The query library: cases with expectations, and a header with the library's tolerances.

Two spellings of one format. YAML: a mapping with the header keys and `cases:`, a list of
case mappings. JSONL: one case object per line, optionally preceded by one
`{"library": {...header...}}` line. Everything is validated before anything runs: every
problem is reported with its line number (`LibraryError.problems`), and a library with any
problem is not run at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.answering.types import Audience
from core.evaluation.metrics import METRICS

MODES = ("answer", "clarify", "handoff", "refused", "degraded")
STATUSES = ("reviewed", "draft")
HEADER_KEYS = frozenset({"name", "description", "tolerances", "acl", "baseline"})
CASE_KEYS = frozenset(
    {
        "id",
        "question",
        "as",
        "audience",
        "expected_sources",
        "must_include",
        "must_not_include",
        "expected_mode",
        "language",
        "tags",
        "conversation",
        "status",
        "notes",
        "origin",
    }
)
_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMPHASIS = re.compile(r"\*\*|__|`")  # Markdown emphasis is not part of a phrase


class LibraryError(ValueError):
    """A library that cannot be run; `problems` holds one line per problem found."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"eval: {path}: {problems[0]}{more}")


@dataclass(frozen=True, slots=True)
class ExpectedSource:
    """A document that answers the case: by document id or file name, optionally pages."""

    name: str
    pages: tuple[int, ...] = ()

    def matches(self, document_id: str, source: str) -> bool:
        return self.name in (document_id, source, source.rsplit("/", 1)[-1])

    def to_json(self) -> Any:
        return {"file": self.name, "pages": list(self.pages)} if self.pages else self.name


@dataclass(frozen=True, slots=True)
class Phrase:
    """A phrase matched case-insensitively, whitespace collapsed and Markdown emphasis
    ignored, or a `/regex/`."""

    text: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> Phrase:
        if len(text) > 2 and text.startswith("/") and text.endswith("/"):
            return cls(text, re.compile(text[1:-1], re.IGNORECASE))
        words = [re.escape(word) for word in text.split()]
        return cls(text, re.compile(r"\s+".join(words), re.IGNORECASE))

    def found_in(self, text: str) -> bool:
        return self.pattern.search(_EMPHASIS.sub("", text)) is not None


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    question: str
    as_email: str
    audience: str = "dm"
    expected_sources: tuple[ExpectedSource, ...] = ()
    must_include: tuple[Phrase, ...] = ()
    must_not_include: tuple[Phrase, ...] = ()
    expected_mode: str = "answer"
    language: str = "en"
    tags: tuple[str, ...] = ()
    conversation: tuple[str, ...] = ()
    status: str = "reviewed"
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "as": self.as_email,
            "audience": self.audience,
            "expected_sources": [s.to_json() for s in self.expected_sources],
            "must_include": [p.text for p in self.must_include],
            "must_not_include": [p.text for p in self.must_not_include],
            "expected_mode": self.expected_mode,
            "language": self.language,
            "tags": list(self.tags),
            "conversation": list(self.conversation),
        }


@dataclass(frozen=True, slots=True)
class Library:
    path: Path
    name: str
    cases: tuple[Case, ...]
    drafts: int = 0  # cases with `status: draft`, not run until a person has reviewed them
    tolerances: Mapping[str, float | None] = field(default_factory=dict)
    acl: Path | None = None  # the reference ACL file leaks are also judged against
    baseline: Path | None = None

    def tolerance(self, metric: str) -> float | None:
        """The allowed change for `metric`; None: reported, never gated."""
        if metric in self.tolerances:
            return self.tolerances[metric]
        spec = METRICS.get(metric)
        if spec is None or not spec.gated:
            return None
        return self.tolerances.get("default", 0.0)


def load_library(path: Path) -> Library:
    """Read and validate a library; raises LibraryError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(path, [f"cannot read the library: {exc}"]) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        header, raw_cases, problems = _read_yaml(text)
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        header, raw_cases, problems = _read_jsonl(text)
    else:
        raise LibraryError(path, ["a library is a .yaml/.yml or .jsonl file"])
    library_problems, fields = _header(header, path)
    problems.extend(library_problems)
    cases: list[Case] = []
    seen: dict[str, int] = {}
    drafts = 0
    for raw, line, key_lines in raw_cases:
        case, case_problems = _case(raw, line, key_lines)
        problems.extend(case_problems)
        if case is None:
            continue
        if case.id in seen:
            problems.append(f"line {line}: id {case.id!r} already used on line {seen[case.id]}")
        seen.setdefault(case.id, line)
        if case.status == "draft":
            drafts += 1
        else:
            cases.append(case)
    if not problems and not cases:
        problems.append("no cases to run" + (f" ({drafts} drafts)" if drafts else ""))
    if problems:
        raise LibraryError(path, problems)
    return Library(path=path, cases=tuple(cases), drafts=drafts, **fields)


# ---------------------------------------------------------------------------- reading

RawCase = tuple[Any, int, dict[str, int]]  # (value, line of the case, line of each key)


def _read_jsonl(text: str) -> tuple[Any, list[RawCase], list[str]]:
    header: Any = {}
    cases: list[RawCase] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc.msg})")
            continue
        if isinstance(item, dict) and set(item) == {"library"}:
            if cases:
                problems.append(f"line {number}: the library header must come first")
            header = item["library"]
            continue
        cases.append((item, number, {}))
    return header, cases, problems


def _read_yaml(text: str) -> tuple[Any, list[RawCase], list[str]]:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)  # the same document as nodes: where each case starts
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        return {}, [], [f"{where}invalid YAML ({problem})"]
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        return {}, [], ["line 1: the library must be a mapping with a 'cases' list"]
    # The last `cases` key is the one safe_load kept (a repeated key overrides).
    cases_node = next((v for k, v in reversed(root.value) if k.value == "cases"), None)
    raw = data.get("cases")
    if not isinstance(raw, list) or not isinstance(cases_node, yaml.SequenceNode):
        line = cases_node.start_mark.line + 1 if cases_node is not None else 1
        return {}, [], [f"line {line}: 'cases' must be a list of cases"]
    if len(raw) != len(cases_node.value):  # aliases or merge keys: nodes and values differ
        line = cases_node.start_mark.line + 1
        return {}, [], [f"line {line}: 'cases' must be a plain list (no aliases or merges)"]
    cases: list[RawCase] = []
    for item, node in zip(raw, cases_node.value, strict=True):
        key_lines = (
            {k.value: k.start_mark.line + 1 for k, _ in node.value}
            if isinstance(node, yaml.MappingNode)
            else {}
        )
        cases.append((item, node.start_mark.line + 1, key_lines))
    header = {k: v for k, v in data.items() if k != "cases"}
    return header, cases, []


# --------------------------------------------------------------------------- validation


def _header(header: Any, path: Path) -> tuple[list[str], dict[str, Any]]:
    if not isinstance(header, dict):
        return ["the library header must be a mapping"], {"name": path.stem}
    problems = [
        f"header: unknown key {key!r} (known: {', '.join(sorted(HEADER_KEYS))})"
        for key in header
        if key not in HEADER_KEYS
    ]
    fields: dict[str, Any] = {"name": str(header.get("name") or path.stem)}
    tolerances = header.get("tolerances") or {}
    if not isinstance(tolerances, dict):
        problems.append("header: 'tolerances' must map metric names to numbers")
        tolerances = {}
    checked: dict[str, float | None] = {}
    for metric, value in tolerances.items():
        if metric != "default" and metric not in METRICS:
            problems.append(f"header: tolerance for unknown metric {metric!r}")
        elif value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            problems.append(f"header: tolerance for {metric} must be a number >= 0 or null")
        else:
            checked[str(metric)] = None if value is None else float(value)
    fields["tolerances"] = checked
    for key in ("acl", "baseline"):
        value = header.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"header: '{key}' must be a file path")
            continue
        target = (path.parent / value).resolve()
        if key == "acl" and not target.is_file():  # a baseline may not exist yet
            problems.append(f"header: acl file not found: {value}")
        fields[key] = target
    return problems, fields


def _case(raw: Any, line: int, key_lines: dict[str, int]) -> tuple[Case | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"line {line}: a case must be a mapping"]
    problems: list[str] = []

    def bad(key: str, message: str) -> None:
        problems.append(f"line {key_lines.get(key, line)}: {key}: {message}")

    for key in raw:
        if key not in CASE_KEYS:
            bad(str(key), "unknown field")
    case_id = raw.get("id")
    if not isinstance(case_id, str | int) or not str(case_id).strip():
        bad("id", "required, a non-empty string")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        bad("question", "required, a non-empty string")
    email = raw.get("as")
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        bad("as", "required, the asker's email")
    audience = raw.get("audience", "dm")
    try:
        Audience.parse(audience if isinstance(audience, str) else "")
    except ValueError as exc:
        bad("audience", str(exc))
    mode = raw.get("expected_mode", "answer")
    if mode not in MODES:
        bad("expected_mode", f"one of {', '.join(MODES)}")
    status = raw.get("status", "reviewed")
    if status not in STATUSES:
        bad("status", f"one of {', '.join(STATUSES)}")
    language = raw.get("language", "en")
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        bad("language", "an ISO 639 code such as en, es, de")
    tags = _strings(raw.get("tags", []), "tags", bad)
    for tag in tags:
        if not _TAG.match(tag):
            bad("tags", f"{tag!r} is not a tag (lower-case letters, digits, - and _)")
    conversation = _strings(raw.get("conversation", []), "conversation", bad)
    sources = _sources(raw.get("expected_sources", []), bad)
    include = _phrases(raw.get("must_include", []), "must_include", bad)
    exclude = _phrases(raw.get("must_not_include", []), "must_not_include", bad)
    if "notes" in raw and not isinstance(raw["notes"], str):
        bad("notes", "a string")
    if "origin" in raw and not isinstance(raw["origin"], dict):
        bad("origin", "a mapping")
    if problems:
        return None, problems
    return (
        Case(
            id=str(case_id).strip(),
            question=str(question).strip(),
            as_email=str(email).strip().lower(),
            audience=str(audience),
            expected_sources=sources,
            must_include=include,
            must_not_include=exclude,
            expected_mode=str(mode),
            language=str(language),
            tags=tuple(dict.fromkeys(tags)),
            conversation=tuple(conversation),
            status=str(status),
            line=line,
        ),
        [],
    )


def _strings(value: Any, key: str, bad: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        bad(key, "a list of non-empty strings")
        return []
    return [v.strip() for v in value]


def _phrases(value: Any, key: str, bad: Any) -> tuple[Phrase, ...]:
    phrases = []
    for text in _strings(value, key, bad):
        try:
            phrases.append(Phrase.parse(text))
        except re.error as exc:
            bad(key, f"{text} is not a valid regex ({exc})")
    return tuple(phrases)


def _sources(value: Any, bad: Any) -> tuple[ExpectedSource, ...]:
    if not isinstance(value, list):
        bad("expected_sources", "a list of file names or {file, pages}")
        return ()
    out = []
    for item in value:
        if isinstance(item, str) and item.strip():
            out.append(ExpectedSource(item.strip()))
            continue
        if isinstance(item, dict) and set(item) <= {"file", "pages"} and "file" in item:
            name, pages = item["file"], item.get("pages") or []
            if (
                isinstance(name, str)
                and name.strip()
                and isinstance(pages, list)
                and all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in pages)
            ):
                out.append(ExpectedSource(name.strip(), tuple(pages)))
                continue
        bad("expected_sources", f"{item!r}: a file name or document id, or {{file, pages: [n]}}")
    return tuple(out)
