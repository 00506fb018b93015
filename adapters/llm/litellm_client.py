"""The ModelClient port on litellm: any provider, one call shape, classified errors.

OpenAI's wire format (OpenAI itself and the OpenAI-compatible servers: vLLM, llama.cpp,
LM Studio, most proxies) is spoken directly (adapters/llm/openai_wire.py) over one shared
HTTP session. litellm's per-call machinery buys nothing there and cost 6–18 ms of CPU per
call (py-spy, README "Less CPU per answer"): its logging object and callbacks, its cost
calculation (we price calls ourselves, from the tier's prices or litellm's price map, read
once), the rebuilt response at the end of a stream, a client set-up per call, and the
openai SDK's typed object per streamed chunk. Other providers, and OpenAI models whose
parameters litellm translates (o-series, gpt-5: `max_completion_tokens`, no
`temperature`), go through litellm with its streaming logging off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

from core.answering.model import ModelError, ModelReply, TextSink, TierSpec

# litellm fetches its price map from the internet on import unless told otherwise; the
# bundled map keeps start-up fast and cost estimates reproducible.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import openai

from adapters.llm import openai_wire

litellm.telemetry = False
litellm.suppress_debug_info = True
# Its per-chunk success logging runs in a thread for callbacks this service never sets.
litellm.disable_streaming_logging = True
litellm.turn_off_message_logging = True

# OpenAI models whose request parameters litellm rewrites: left to litellm.
_TRANSLATED = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)
_OPENAI_BASE = "https://api.openai.com/v1"


class LiteLLMClient:
    async def complete(
        self,
        tier: TierSpec,
        messages: Sequence[dict[str, str]],
        timeout_s: float,
        on_text: TextSink | None = None,
    ) -> ModelReply:
        started = time.perf_counter()
        api_key = tier.api_key
        try:
            name = _openai_model(tier.model)
            if name is not None:
                return await self._direct(name, tier, messages, timeout_s, started, on_text)
            if on_text is None:
                return await self._call(tier, messages, timeout_s, api_key, started)
            return await self._stream(tier, messages, timeout_s, api_key, started, on_text)
        except ModelError as exc:
            if api_key and api_key in str(exc):
                message = str(exc).replace(api_key, "***")
                raise ModelError(exc.kind, message, exc.retry_after_s) from None
            raise

    async def _call(
        self,
        tier: TierSpec,
        messages: Sequence[dict[str, str]],
        timeout_s: float,
        api_key: str | None,
        started: float,
    ) -> ModelReply:
        with _classified():
            response = await litellm.acompletion(**_arguments(tier, messages, timeout_s, api_key))
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            text = response.choices[0].message.content or ""
            usage = response.usage
            input_tokens, output_tokens = int(usage.prompt_tokens), int(usage.completion_tokens)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise ModelError("bad_response", f"unexpected response shape: {exc}") from None
        return self._reply(tier, text, input_tokens, output_tokens, latency_ms)

    async def _stream(
        self,
        tier: TierSpec,
        messages: Sequence[dict[str, str]],
        timeout_s: float,
        api_key: str | None,
        started: float,
        on_text: TextSink,
    ) -> ModelReply:
        """The same call with ``stream=True``: only ``delta.content`` is passed on (reasoning
        and tool-call deltas never are), and the whole call, not each read, is bounded by
        ``timeout_s``. A stream that ends without a finish reason was cut off: a failure."""
        parts: list[str] = []
        first_token_ms = None
        finished = False
        usage: Any = None
        with _classified():
            async with asyncio.timeout(timeout_s):
                stream = await litellm.acompletion(
                    **_arguments(tier, messages, timeout_s, api_key),
                    stream=True,
                    stream_options={"include_usage": True},
                )
                try:
                    async for chunk in stream:
                        usage = getattr(chunk, "usage", None) or usage
                        for choice in chunk.choices or ():
                            text = getattr(choice.delta, "content", None)
                            if text:
                                if first_token_ms is None:
                                    first_token_ms = (time.perf_counter() - started) * 1000
                                parts.append(text)
                                on_text(text)
                            finished = finished or bool(choice.finish_reason)
                finally:
                    closing = getattr(stream, "aclose", None)
                    if closing is not None:
                        with contextlib.suppress(Exception):
                            await closing()
        if not finished:
            raise ModelError("unavailable", "the model's stream ended before the answer did")
        text = "".join(parts)
        try:
            input_tokens, output_tokens = int(usage.prompt_tokens), int(usage.completion_tokens)
        except (AttributeError, TypeError, ValueError):  # a provider without streamed usage
            input_tokens = sum(self.count_tokens(tier, m.get("content", "")) for m in messages)
            output_tokens = self.count_tokens(tier, text)
        latency_ms = (time.perf_counter() - started) * 1000
        return self._reply(tier, text, input_tokens, output_tokens, latency_ms, first_token_ms)

    def _reply(
        self,
        tier: TierSpec,
        text: str,
        input_tokens: int,
        output_tokens: int,
        latency_ms: float,
        first_token_ms: float | None = None,
    ) -> ModelReply:
        in_price, out_price = self.prices(tier)
        return ModelReply(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=input_tokens * in_price + output_tokens * out_price,
            latency_ms=latency_ms,
            first_token_ms=first_token_ms,
        )

    async def _direct(
        self,
        name: str,
        tier: TierSpec,
        messages: Sequence[dict[str, str]],
        timeout_s: float,
        started: float,
        on_text: TextSink | None,
    ) -> ModelReply:
        """OpenAI's wire format, straight to the endpoint (adapters/llm/openai_wire.py)."""
        body = {
            "model": name,
            "messages": list(messages),
            "max_tokens": tier.max_output_tokens,
            "temperature": 0,
        }
        base = tier.api_base or os.environ.get("OPENAI_BASE_URL") or _OPENAI_BASE
        key = tier.api_key or os.environ.get("OPENAI_API_KEY")
        with _classified():
            async with asyncio.timeout(timeout_s):
                done = await openai_wire.chat(base, key, body, on_text, started)
        if on_text is not None and not done.finished:
            raise ModelError("unavailable", "the model's stream ended before the answer did")
        input_tokens, output_tokens = done.input_tokens, done.output_tokens
        if input_tokens is None or output_tokens is None:  # a server that reports no usage
            input_tokens = sum(self.count_tokens(tier, m.get("content", "")) for m in messages)
            output_tokens = self.count_tokens(tier, done.text)
        latency_ms = (time.perf_counter() - started) * 1000
        return self._reply(
            tier, done.text, input_tokens, output_tokens, latency_ms, done.first_token_ms
        )

    def count_tokens(self, tier: TierSpec, text: str) -> int:
        return _count_tokens(tier.model, text)

    def prices(self, tier: TierSpec) -> tuple[float, float]:
        in_price, out_price = _price_map(tier.model)
        return (
            tier.input_cost_per_token if tier.input_cost_per_token is not None else in_price,
            tier.output_cost_per_token if tier.output_cost_per_token is not None else out_price,
        )


@cache
def _openai_model(model: str) -> str | None:
    """The model's name at an OpenAI-format endpoint, or None: litellm calls it."""
    try:
        name, provider, _key, _base = litellm.get_llm_provider(model)
    except Exception:
        return None
    if provider != "openai" or _TRANSLATED.match(name):
        return None
    return name


def _arguments(
    tier: TierSpec, messages: Sequence[dict[str, str]], timeout_s: float, api_key: str | None
) -> dict[str, Any]:
    return {
        "model": tier.model,
        "messages": list(messages),
        "api_base": tier.api_base,
        "api_key": api_key,
        "max_tokens": tier.max_output_tokens,
        "timeout": timeout_s,
        "num_retries": 0,  # retries and fallbacks are the answer flow's decision
        "temperature": 0,
        "drop_params": True,  # e.g. temperature for o-series models, which refuse it
    }


@contextlib.contextmanager
def _classified() -> Any:
    """litellm's exceptions as ModelError kinds, so the flow picks the right fallback."""
    try:
        yield
    except ModelError:
        raise
    except (litellm.RateLimitError, openai.RateLimitError) as exc:
        raise ModelError("ratelimited", _short(exc), _retry_after(exc)) from None
    except (litellm.Timeout, openai.APITimeoutError, TimeoutError) as exc:
        raise ModelError("timeout", _short(exc)) from None
    except Exception as exc:  # server errors, connection failures, anything else: a failed tier
        raise ModelError("unavailable", _short(exc)) from None


async def warm_up(tiers: Sequence[TierSpec]) -> None:
    """Pay litellm's first-call costs before the first question: its tokenizer and price
    lookups load lazily, and its first completion imports dozens of modules, all on the
    event loop (about a second, stalling every other request). A mocked completion runs
    the same code path without any network call."""
    import litellm._service_logger  # the first real call imports it too

    for tier in tiers:
        _count_tokens(tier.model, "warm-up")
        _price_map(tier.model)
        arguments = {
            "model": tier.model,
            "messages": [{"role": "user", "content": "warm-up"}],
            "api_base": tier.api_base,
            "api_key": "warm-up",
            "max_tokens": 1,
            "mock_response": "ok",
        }
        try:
            await litellm.acompletion(**arguments)
            # Streaming has lazy imports of its own (the stream wrapper, usage building).
            stream = await litellm.acompletion(
                **arguments, stream=True, stream_options={"include_usage": True}
            )
            async for _chunk in stream:
                pass
        except Exception:  # a warm-up never stops the service
            continue


@cache
def _price_map(model: str) -> tuple[float, float]:
    try:
        info: Any = litellm.get_model_info(model)
        return float(info.get("input_cost_per_token") or 0.0), float(
            info.get("output_cost_per_token") or 0.0
        )
    except Exception:  # unknown model (local servers, proxies): priced at zero unless overridden
        return 0.0, 0.0


@lru_cache(maxsize=8192)  # the same chunks are counted for question after question
def _count_tokens(model: str, text: str) -> int:
    try:
        return int(litellm.token_counter(model=model, text=text))
    except Exception:
        return max(1, len(text) // 4)


def _retry_after(exc: Exception) -> float | None:
    for headers in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
    ):
        if headers is None:
            continue
        value = headers.get("retry-after") or headers.get("Retry-After")
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _short(exc: Exception) -> str:
    # Provider messages can echo request details; keep the class and the first line only.
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first[:200]}"
