"""The answer flow's settings, as the core sees them (bot/wiring.py builds them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.answering.gate import GateConfig
from core.answering.model import TierSpec
from core.answering.policy import PolicyConfig
from core.answering.prompt import SYSTEM_PROMPT


@dataclass(frozen=True, slots=True)
class AnswerConfig:
    tiers: tuple[TierSpec, ...] = ()
    deadline_s: float = 20.0
    max_cost_per_request_usd: float | None = None
    require_citations: bool = True
    max_question_chars: int = 4000
    top_k: int = 5
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    redaction: str = "pii"  # none | pii | all: message text in traces
    release: str = "dev"  # the release id: recorded on every trace and cache entry
    system_prompt: str = SYSTEM_PROMPT  # the release's prompt template
    policy: PolicyConfig = field(default_factory=PolicyConfig)  # topic rules, human request
    pii_redaction: bool = True  # before text reaches any model, cache entry or memory
    language: str = "auto"  # "auto" = the question's language, else a language code
    allow_tools: bool = False
    gate: GateConfig = field(default_factory=GateConfig)
    memory_turns: int = 6
    memory_max_age_s: float = 3600.0
