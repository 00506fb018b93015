"""The release file: the settings that change answers without a code deploy, as one YAML
file validated with the same models as the configuration file (README "Launch checklist
and releases").

A release's content is the *effective* value of every one of its sections (defaults filled
in, secrets left out), so two files that mean the same thing are the same release, and a
release stays what it was when the code's defaults change. Its id is the first 12 hex
digits of the SHA-256 of that content as canonical JSON: the id recorded on traces and
cache entries. Without an active release, the configuration file's own sections form the
release that answers, with its id computed the same way.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.settings import (
    CacheSettings,
    ConfigError,
    GateSettings,
    MemorySettings,
    ModelsSettings,
    PolicySettings,
    RetrievalSettings,
    Settings,
    _refuse_secrets,
)
from core.answering.prompt import SYSTEM_PROMPT

SECTIONS = ("prompt", "models", "retrieval", "policy", "cache", "gate", "memory")
ID_LENGTH = 12


class ReleaseFileError(ValueError):
    """A release file that cannot be used: one line naming the key."""


class PromptSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The system prompt of every model call (the rules a grounded, cited answer follows).
    system: str = Field(default=SYSTEM_PROMPT, min_length=20, max_length=20_000)


class ReleaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)


def load_release_file(path: Path) -> dict[str, Any]:
    """The validated content of a release file; ReleaseFileError names the first problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseFileError(f"release file {path}: not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReleaseFileError(f"release file {path}: cannot read it: {reason}") from None
    if not isinstance(data, dict) or not data:
        raise ReleaseFileError(
            f"release file {path}: expected a mapping with some of: {', '.join(SECTIONS)}"
        )
    try:
        _refuse_secrets(data, ReleaseFile, prefix="")
    except ConfigError as exc:
        raise ReleaseFileError(f"release file {path}: {exc}") from None
    return release_content(_validated(data, f"release file {path}"))


def release_content(release: ReleaseFile) -> dict[str, Any]:
    """The stored form: every section's effective values, secrets left out."""
    return release.model_dump(mode="json", exclude={"models": {"tiers": {"__all__": {"api_key"}}}})


def settings_release(settings: Settings) -> dict[str, Any]:
    """The release the configuration file describes (what answers when none is active)."""
    return release_content(
        ReleaseFile(
            models=settings.models,
            retrieval=settings.retrieval,
            policy=settings.policy,
            cache=settings.cache,
            gate=settings.gate,
            memory=settings.memory,
        )
    )


def content_hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def release_id(content: dict[str, Any]) -> str:
    return content_hash(content)[:ID_LENGTH]


def with_release(settings: Settings, content: dict[str, Any]) -> tuple[Settings, str]:
    """The settings with a release's sections in place of the file's, and its system
    prompt. Tier keys are read from the environment variables the release names."""
    release = _validated(content, "release")
    update = {name: getattr(release, name) for name in SECTIONS if name != "prompt"}
    return settings.model_copy(update=update), release.prompt.system


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Every leaf that differs, as {key, old, new} with dotted keys (list items by index)."""
    a, b = _leaves(old), _leaves(new)
    keys = set(a) | set(b)
    # An empty list on one side and its items on the other: the items say it all.
    parents = {key.rsplit(".", 2)[0] for key in keys if "." in key}
    return [
        {"key": key, "old": a.get(key), "new": b.get(key)}
        for key in sorted(keys - parents, key=_natural)
        if a.get(key) != b.get(key)
    ]


def _validated(data: Any, where: str) -> ReleaseFile:
    try:
        return ReleaseFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        key = ".".join(str(part) for part in error["loc"]) or "release"
        raise ReleaseFileError(f"{where}: {key}: {error['msg']}") from None


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _natural(key: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in key.split(".")]
