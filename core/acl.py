"""ACL rules: which principals may read a document, from an ACL file (YAML).

```yaml
default: [public]
rules:                    # first match wins; globs relative to the ingested root
  - match: "hr/**"
    allow: ["group:hr", "user:ceo@example.com"]
    classification: confidential
  - match: "**/board-*.md"
    classification: restricted   # a rule may set only the classification
```
Globs are matched against the POSIX path relative to the ingested root. `*` and `?` stay
inside one path segment, `**` spans segments. A pattern with no `/` also matches the file
name at any depth, as in .gitignore. The ACL comes from the first matching rule with
`allow`, the classification from the first matching rule with `classification` (else the
configured default), so the two can be written independently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.classification import ClassificationError, parse_level
from core.principals import PUBLIC, PrincipalError, parse_principals

_RULE_KEYS = {"match", "allow", "classification"}


class AclFileError(ValueError):
    """A malformed ACL file: nothing may be ingested with it."""


@dataclass(frozen=True, slots=True)
class AclRule:
    pattern: str
    allow: frozenset[str] | None  # None: the rule only classifies
    regex: re.Pattern[str]
    classification: str | None = None

    def matches(self, relpath: str) -> bool:
        if self.regex.fullmatch(relpath):
            return True
        return "/" not in self.pattern and bool(self.regex.fullmatch(relpath.rsplit("/", 1)[-1]))


@dataclass(frozen=True, slots=True)
class AclPolicy:
    default: frozenset[str]
    rules: tuple[AclRule, ...] = ()

    def acl_for(self, relpath: str) -> frozenset[str]:
        for rule in self.rules:
            if rule.allow is not None and rule.matches(relpath):
                return rule.allow
        return self.default

    def classification_for(self, relpath: str) -> str | None:
        """The first matching rule's classification; None: the configured default."""
        for rule in self.rules:
            if rule.classification is not None and rule.matches(relpath):
                return rule.classification
        return None


DEFAULT_POLICY = AclPolicy(default=frozenset({PUBLIC}))


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def policy_from_mapping(data: Any) -> AclPolicy:
    if not isinstance(data, Mapping):
        raise AclFileError("the ACL file must be a mapping with 'default' and 'rules'")
    unknown = set(data) - {"default", "rules"}
    if unknown:
        raise AclFileError(f"unknown key(s) in ACL file: {', '.join(sorted(map(str, unknown)))}")
    try:
        default = parse_principals(_as_list(data.get("default", [PUBLIC]), "default"))
        rules = []
        raw_rules = data.get("rules") or []
        if not isinstance(raw_rules, list):
            raise AclFileError("'rules' must be a list")
        for index, raw in enumerate(raw_rules, start=1):
            keys = set(raw) if isinstance(raw, Mapping) else set()
            if "match" not in keys or not keys & {"allow", "classification"} or keys - _RULE_KEYS:
                raise AclFileError(
                    f"rule {index} must have 'match' and 'allow' and/or 'classification' "
                    "(and nothing else)"
                )
            pattern = raw["match"]
            if not isinstance(pattern, str) or not pattern.strip():
                raise AclFileError(f"rule {index}: 'match' must be a non-empty glob string")
            pattern = pattern.strip().lstrip("./")
            allow = (
                parse_principals(_as_list(raw["allow"], f"rule {index} allow"))
                if "allow" in raw
                else None
            )
            level = (
                parse_level(raw["classification"], f"rule {index} classification")
                if "classification" in raw
                else None
            )
            rules.append(AclRule(pattern, allow, glob_to_regex(pattern), level))
    except (PrincipalError, ClassificationError) as exc:
        raise AclFileError(str(exc)) from exc
    return AclPolicy(default=default, rules=tuple(rules))


def load_policy(path: Path) -> AclPolicy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AclFileError(f"ACL file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AclFileError(f"cannot read ACL file {path}: {first_line}") from exc
    return policy_from_mapping(data)


def acl_from_front_matter(front_matter: Mapping[str, Any]) -> frozenset[str] | None:
    """Markdown front matter `acl: [...]` overrides the ACL file for that document."""
    if "acl" not in front_matter:
        return None
    try:
        return parse_principals(_as_list(front_matter["acl"], "front matter acl"))
    except PrincipalError as exc:
        raise AclFileError(f"front matter: {exc}") from exc


def classification_from_front_matter(front_matter: Mapping[str, Any]) -> str | None:
    """Markdown front matter `classification: ...` overrides the ACL file and the default."""
    if "classification" not in front_matter:
        return None
    try:
        return parse_level(front_matter["classification"], "front matter classification")
    except ClassificationError as exc:
        raise AclFileError(str(exc)) from exc


def _as_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise AclFileError(f"{where} must be a list of principals")
