"""The model port: what the answer flow needs from a chat model, whoever serves it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.classification import ALL_LEVELS


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    model: str  # any litellm model string
    api_base: str | None = None
    api_key_env: str | None = None  # the environment variable holding the key
    api_key: str | None = field(default=None, repr=False)  # read from that variable
    timeout_s: float = 8.0
    max_output_tokens: int = 500
    input_cost_per_token: float | None = None  # overrides the provider price map
    output_cost_per_token: float | None = None
    # Document classifications this tier may receive (core/classification.py).
    allowed_classifications: frozenset[str] = ALL_LEVELS


@dataclass(frozen=True, slots=True)
class ModelReply:
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    first_token_ms: float | None = None  # streamed calls: when the first text arrived


class ModelError(Exception):
    """A failed model call, classified so the flow can pick the right fallback and notice."""

    def __init__(self, kind: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # "ratelimited" | "timeout" | "unavailable" | "bad_response"
        self.retry_after_s = retry_after_s


# Receives the answer text as the model writes it (never reasoning or tool-call text).
TextSink = Callable[[str], None]


class ModelClient(Protocol):
    async def complete(
        self,
        tier: TierSpec,
        messages: Sequence[dict[str, str]],
        timeout_s: float,
        on_text: TextSink | None = None,
    ) -> ModelReply:
        """The whole reply within ``timeout_s``. With ``on_text`` the model streams and each
        piece of answer text is handed over as it arrives; a failure mid-answer raises
        ModelError like any other, after some text was handed over."""
        ...

    def count_tokens(self, tier: TierSpec, text: str) -> int: ...

    def prices(self, tier: TierSpec) -> tuple[float, float]:
        """USD per input token and per output token."""
        ...


class NoModelClient:
    """Used when no tier is configured: the extractive tier answers, nothing is called."""

    async def complete(
        self,
        tier: TierSpec,
        messages: Sequence[dict[str, str]],
        timeout_s: float,
        on_text: TextSink | None = None,
    ) -> ModelReply:
        raise ModelError("unavailable", "no model tier is configured")

    def count_tokens(self, tier: TierSpec, text: str) -> int:
        return max(1, len(text) // 4)

    def prices(self, tier: TierSpec) -> tuple[float, float]:
        return 0.0, 0.0
