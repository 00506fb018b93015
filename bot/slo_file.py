"""The service agreement file (`slo.yaml`, path in `slo.file`): targets with an owner each,
approved by someone on a date. Validated strictly: a typo must not drop a target."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.durations import parse_duration
from core.slo import Objective, standard_objectives


class SloFileError(ValueError):
    """The SLO file cannot be used; the message is one line naming the key."""


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = Field(min_length=1)


class Latency(_Target):
    p95_s: float = Field(gt=0)


class MinShare(_Target):
    min: float = Field(gt=0, lt=1)


class MaxShare(_Target):
    max: float = Field(gt=0, lt=1)


class Cost(_Target):
    max_usd: float = Field(gt=0)


class Budget(_Target):
    usd: float = Field(gt=0)
    # Requests a month expected before there is traffic to count: what the pre-launch
    # checklist projects the evaluation's cost per request over.
    expected_requests: int | None = Field(default=None, gt=0)


class Objectives(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_latency: Latency | None = None
    first_text_latency: Latency | None = None
    cache_hit_latency: Latency | None = None
    availability: MinShare | None = None
    degraded_share: MaxShare | None = None
    handoff_rate: MaxShare | None = None
    thumbs_down_share: MaxShare | None = None
    cost_per_request_mean: Cost | None = None
    cost_per_request_p95: Cost | None = None
    monthly_budget: Budget | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Objectives:
        if not self.model_dump(exclude_none=True):
            raise ValueError("name at least one objective")
        return self


class SloFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approved_by: str = Field(min_length=1)
    approved_on: date
    period: str = "30d"  # the rolling error-budget period
    objectives: Objectives

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        seconds = parse_duration(value)
        if not 86400 <= seconds <= 366 * 86400:
            raise ValueError("between 1d and 366d")
        return value

    @property
    def period_s(self) -> float:
        return parse_duration(self.period)

    def to_objectives(self) -> list[Objective]:
        return standard_objectives(self.objectives.model_dump(exclude_none=True))


def load_slo_file(path: Path) -> SloFile:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SloFileError(f"slo file {path}: not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SloFileError(f"slo file {path}: cannot read it: {reason}") from None
    if not isinstance(data, dict):
        raise SloFileError(f"slo file {path}: expected a mapping with approved_by, objectives")
    try:
        return SloFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        key = ".".join(str(part) for part in error["loc"]) or "file"
        raise SloFileError(f"slo file {path}: {key}: {error['msg']}") from None
