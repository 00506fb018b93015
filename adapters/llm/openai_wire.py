"""OpenAI's chat-completions wire format, spoken directly over one shared aiohttp session.

OpenAI and the OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, most proxies) take
the same request and answer with the same JSON, or with server-sent events when streaming.
Decoding that takes a dictionary per chunk; the SDKs build a typed object per chunk, which
was a third of a replica's CPU under streaming load (py-spy, README "Less CPU per answer").

Failures come back as :class:`ModelError` kinds: 429 → ``ratelimited`` (with Retry-After),
any other error status, a refused or dropped connection, a body that is not JSON, an error
event or a stream cut before its end → ``unavailable``; a JSON answer of the wrong shape →
``bad_response``. Timeouts are the caller's (the whole call is bounded there).
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp

from core.answering.model import ModelError, TextSink

_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_USERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finished: bool  # the model said it was done (a finish reason)
    input_tokens: int | None  # None: the server did not report usage
    output_tokens: int | None
    first_token_ms: float | None = None


def session() -> aiohttp.ClientSession:
    """The running loop's session: one connection pool for every model endpoint."""
    loop = asyncio.get_running_loop()
    found = _SESSIONS.get(loop)
    if found is None or found.closed:
        found = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=None),  # the caller bounds each call
        )
        _SESSIONS[loop] = found
    return found


def retain() -> None:
    """A user of the running loop's session (a service) starts: see :func:`release`."""
    loop = asyncio.get_running_loop()
    _USERS[loop] = _USERS.get(loop, 0) + 1


async def release() -> None:
    """A user stops; the last one closes the session (connections, and no warning)."""
    loop = asyncio.get_running_loop()
    _USERS[loop] = max(0, _USERS.get(loop, 0) - 1)
    if _USERS[loop] == 0:
        found = _SESSIONS.pop(loop, None)
        if found is not None:
            await found.close()


async def chat(
    base_url: str,
    api_key: str | None,
    body: dict[str, Any],
    on_text: TextSink | None,
    started: float,
) -> Completion:
    """POST ``body`` to ``<base_url>/chat/completions``; streamed when ``on_text`` is given
    (each text delta passed on as it comes, reasoning and tool-call deltas never)."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if on_text is not None:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    url = base_url.rstrip("/") + "/chat/completions"
    try:
        async with session().post(url, data=json.dumps(body), headers=headers) as response:
            if response.status >= 400:
                raise _refused(response.status, response.headers, await response.read())
            if on_text is None:
                return _whole(await response.read())
            return await _streamed(response, on_text, started)
    except aiohttp.ClientError as exc:
        raise ModelError("unavailable", f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _refused(status: int, headers: Any, raw: bytes) -> ModelError:
    try:
        message = str(json.loads(raw)["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        message = raw[:200].decode("utf-8", "replace")
    if status == 429:
        return ModelError("ratelimited", f"HTTP 429: {message}", _seconds(headers))
    return ModelError("unavailable", f"HTTP {status}: {message}")


def _seconds(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ModelError("unavailable", "the model's server sent a body that is not JSON") from None


def _whole(raw: bytes) -> Completion:
    data = _json(raw)
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            finished=bool(choice.get("finish_reason")),
            input_tokens=_count(usage.get("prompt_tokens")),
            output_tokens=_count(usage.get("completion_tokens")),
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelError("bad_response", f"unexpected response shape: {exc!r}") from None


async def _streamed(
    response: aiohttp.ClientResponse, on_text: TextSink, started: float
) -> Completion:
    parts: list[str] = []
    first_token_ms = None
    finished = False
    usage: dict[str, Any] = {}
    data: list[str] = []
    async for raw in response.content:  # server-sent events: one field per line
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
            continue
        if line or not data:
            continue  # another field, a comment, or a blank line between events
        payload, data = "\n".join(data), []
        if payload == "[DONE]":
            break
        chunk = _json(payload)
        if not isinstance(chunk, dict):
            raise ModelError("bad_response", "a stream event that is not an object")
        if chunk.get("error"):
            raise ModelError("unavailable", f"error event: {str(chunk['error'])[:200]}")
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - started) * 1000
                parts.append(text)
                on_text(text)
            finished = finished or bool(choice.get("finish_reason"))
    return Completion(
        text="".join(parts),
        finished=finished,
        input_tokens=_count(usage.get("prompt_tokens")),
        output_tokens=_count(usage.get("completion_tokens")),
        first_token_ms=first_token_ms,
    )


def _count(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
