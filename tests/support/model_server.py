"""A local OpenAI-compatible chat-completions server: a protocol double for model providers.

Tests point litellm at it as model ``openai/<name>`` with ``api_base=server.url`` and any
api_key. It speaks the real wire format (``POST /v1/chat/completions``, ``GET /v1/models``,
errors as ``{"error": {"message", "type", "code"}}``), so the whole client stack (litellm, the
openai SDK, httpx) is exercised, not a mock of it.

Behaviours, per model, scripted FIFO with :meth:`ModelServer.script` or set as the model's
default with :meth:`ModelServer.set_default` (the global default is ``"answer"``):

- ``answer``: "According to the sources, <first sentence of source [1]> [1]." plus
  " See also [2]." when a second source is present; without sources,
  "The provided sources do not contain the answer."
- ``uncited``: the same sentence without any [n] marker.
- ``cannot``: "I cannot answer this from the provided sources."
- ``text:<literal>``: exactly <literal>.
- ``429`` / ``429:<seconds>``: 429 with ``Retry-After`` (default 1) and a rate-limit error body.
- ``500``: 500 server error. ``503``: 503 service unavailable.
- ``hang`` / ``hang:<seconds>``: answer after that long (default 30 s); does not block other
  requests and does not delay :meth:`ModelServer.stop`.
- ``delay:<ms>``: answer after that many milliseconds.
- ``bad``: 200 with a body that is not JSON.
- ``think``: the ``answer`` reply, preceded by reasoning text (``reasoning_content``) and a
  tool call, as reasoning models and tool-using providers send them: text a client must
  never show. Its reasoning contains :data:`SECRET_THOUGHT`.
- ``cut`` / ``cut:<tokens>``: streamed requests only: the ``answer`` reply is cut off after
  that many tokens (default: half of them): the connection is dropped without a
  ``finish_reason``, a usage chunk or ``[DONE]``, as when a provider fails mid-answer.
  (Non-streamed: a 500, since a whole body is all or nothing.)

Streaming (``"stream": true``) speaks OpenAI's server-sent events: ``data: <chunk>`` lines
of ``chat.completion.chunk`` objects (the first with the ``role``, one per token with its
``delta.content``, then an empty delta with ``finish_reason: "stop"``), a last chunk with
``choices: []`` and the ``usage`` when ``stream_options.include_usage`` is set (every other
chunk then has ``"usage": null``), and ``data: [DONE]``. Headers are sent at once; the
first token follows after the model's pacing (:meth:`ModelServer.set_pacing`: a first-token
delay, then tokens per second). A token is a word with the whitespace before it.

A down provider is simulated with a port nothing listens on: :func:`unused_port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import threading
import time
import zlib
from collections import deque
from typing import Any

from aiohttp import web

from tests.support.threaded import ThreadedServer

DEFAULT_BEHAVIOUR = "answer"
NO_SOURCES = "The provided sources do not contain the answer."
CANNOT = "I cannot answer this from the provided sources."
SECRET_THOUGHT = "(private reasoning: the user may not see this)"

_SIMPLE = {"answer", "uncited", "cannot", "429", "500", "503", "hang", "bad", "think", "cut"}
_TOKEN = re.compile(r"\s*\S+")
_HEADER = re.compile(r"^\s*\[(\d+)\]\s*(.*)$")
_FENCE_OPEN = re.compile(r"^\s*<<<\s*SOURCE\b.*$", re.IGNORECASE)
_FENCE_CLOSE = re.compile(r"^\s*SOURCE\b[^<>]*>>>\s*$", re.IGNORECASE)
_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)")


EMBEDDING_DIMENSION = 64


def bag_of_words(text: str) -> list[float]:
    vector = [0.0] * EMBEDDING_DIMENSION
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % EMBEDDING_DIMENSION] += 1.0
    return vector if any(vector) else [1.0] + [0.0] * (EMBEDDING_DIMENSION - 1)


def unused_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on (bound then released): a "down" provider."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def validate_behaviour(behaviour: str) -> str:
    """Return ``behaviour`` if it is known, else raise ValueError (typos fail loudly)."""
    if behaviour in _SIMPLE:
        return behaviour
    name, sep, arg = behaviour.partition(":")
    if sep and name == "text":
        return behaviour
    if sep and name == "cut":
        if not arg.isdigit():
            raise ValueError(f"bad argument in model behaviour {behaviour!r}")
        return behaviour
    if sep and name in {"429", "hang", "delay"}:
        try:
            if float(arg) < 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"bad argument in model behaviour {behaviour!r}") from None
        return behaviour
    raise ValueError(f"unknown model behaviour {behaviour!r}")


def _strip_provider(model: str) -> str:
    return model.removeprefix("openai/")


def message_text(messages: Any) -> str:
    """All message contents joined by newlines (string contents and OpenAI text parts)."""
    parts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "\n".join(parts)


def find_sources(text: str) -> list[tuple[int, str]]:
    """Numbered sources as (number, body text), in order of appearance.

    A source starts at a line beginning with ``[n]``. Its body is the following lines up to the
    next header or a blank line; ``<<<SOURCE n`` ... ``SOURCE n>>>`` fences are understood
    (lines inside a fence are body, even if they begin with ``[m]``). When there is no body,
    the rest of the header line is used.
    """
    sources: list[tuple[int, str]] = []
    current: tuple[int, str, list[str]] | None = None
    fenced = False

    def close() -> None:
        if current is not None:
            number, rest, body = current
            sources.append((number, " ".join(body) if body else rest))

    for line in text.splitlines():
        if fenced:
            if _FENCE_CLOSE.match(line):
                fenced = False
            elif current is not None and line.strip():
                current[2].append(line.strip())
            continue
        header = _HEADER.match(line)
        if header:
            close()
            current = (int(header.group(1)), header.group(2).strip(), [])
        elif current is not None and _FENCE_OPEN.match(line):
            fenced = True
        elif current is not None and line.strip():
            current[2].append(line.strip())
        elif current is not None and current[2]:
            close()  # a blank line ends an unfenced body
            current = None
    close()
    return sources


def first_sentence(body: str) -> str:
    """The first sentence of ``body``, whitespace collapsed, terminal punctuation removed."""
    flat = " ".join(body.split())
    match = _SENTENCE.match(flat)
    sentence = match.group(1) if match else flat
    return sentence.rstrip(".!?").strip()


def build_answer(messages: Any, cited: bool = True) -> str:
    sources = find_sources(message_text(messages))
    if not sources:
        return NO_SOURCES
    first_number, body = sources[0]
    sentence = first_sentence(body)
    if not cited:
        return f"According to the sources, {sentence}."
    reply = f"According to the sources, {sentence} [{first_number}]."
    others = [number for number, _ in sources if number != first_number]
    if others:
        reply += f" See also [{others[0]}]."
    return reply


def tokens_of(reply: str) -> list[str]:
    """How the double splits a reply into streamed tokens: words with their leading space."""
    return _TOKEN.findall(reply) or [reply]


def _error(status: int, message: str, type_: str, code: Any, **headers: str) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers or None)


class ModelServer(ThreadedServer):
    """Runs in its own thread with its own event loop, so it serves both async tests and
    subprocesses.

    Usage::

        with ModelServer() as server:
            server.script("fast", "429:2", "answer")
            await litellm.acompletion(model="openai/fast", api_base=server.url,
                                      api_key="test-key", messages=[...])

    How litellm 1.110.2 (openai SDK underneath) surfaces each failure, with ``num_retries=0``
    (pinned by tests/unit/test_model_server.py):

    - ``429`` -> ``litellm.RateLimitError`` (status_code 429). The Retry-After value, a string
      such as ``"2"``, is at ``exc.response.headers["retry-after"]`` (an ``httpx.Response``;
      header lookup is case-insensitive) and equally at
      ``exc.litellm_response_headers["retry-after"]`` (an ``httpx.Headers``).
    - ``500`` -> ``litellm.InternalServerError`` (status_code 500).
    - ``503`` -> ``litellm.ServiceUnavailableError`` (status_code 503).
    - ``hang`` beyond the client ``timeout`` -> ``litellm.Timeout`` (status_code 408). Note it
      is NOT a subclass of ``litellm.APIConnectionError`` (only of ``openai.APIConnectionError``).
    - ``bad`` -> ``litellm.InternalServerError`` (status_code 500, JSON decode message).
    - a down port (:func:`unused_port`) -> ``litellm.InternalServerError`` with status_code 500,
      NOT ``litellm.APIConnectionError``: litellm wraps the SDK's ``APIConnectionError`` as a 500.
      It is recognisable by "Connection error" in ``str(exc)``, ``exc.body is None`` and
      ``exc.litellm_response_headers is None`` (a real 500 has the server's headers).

    Model names are as the provider sees them (``"fast"`` for litellm's ``"openai/fast"``); an
    ``openai/`` prefix given to :meth:`script`, :meth:`set_default` or :meth:`requests_for` is
    ignored. Recorded ``_headers`` keys are lower-cased.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str]] = {}
        self._defaults: dict[str, str] = {}
        self._pacing: dict[str, tuple[float, float]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- control (any thread) -------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._thread is None:
            raise RuntimeError("ModelServer is not started")
        return f"http://{self.host}:{self.port}/v1"

    def script(self, model: str, *behaviours: str) -> None:
        """Queue behaviours for the next requests for ``model`` (FIFO)."""
        checked = [validate_behaviour(b) for b in behaviours]
        with self._lock:
            self._scripts.setdefault(_strip_provider(model), deque()).extend(checked)

    def set_default(self, model: str, behaviour: str) -> None:
        """The behaviour for ``model`` when its script queue is empty."""
        validate_behaviour(behaviour)
        with self._lock:
            self._defaults[_strip_provider(model)] = behaviour

    def set_pacing(self, model: str, first_token_ms: float = 0, tokens_per_s: float = 0) -> None:
        """How ``model`` streams: the first token after ``first_token_ms``, then
        ``tokens_per_s`` (0: as fast as possible). Non-streamed replies wait for the same
        total time, as a real model's would."""
        if first_token_ms < 0 or tokens_per_s < 0:
            raise ValueError("pacing must not be negative")
        with self._lock:
            self._pacing[_strip_provider(model)] = (first_token_ms / 1000, tokens_per_s)

    def requests_for(self, model: str) -> list[dict]:
        name = _strip_provider(model)
        with self._lock:
            return [r for r in self.requests if r.get("_model") == name]

    def reset(self) -> None:
        """Clear scripts, defaults and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._pacing.clear()
            self.requests.clear()

    def _next_behaviour(self, model: str) -> str:
        with self._lock:
            queue = self._scripts.get(model)
            if queue:
                return queue.popleft()
            return self._defaults.get(model, DEFAULT_BEHAVIOUR)

    def _known_models(self) -> list[str]:
        with self._lock:
            names = set(self._scripts) | set(self._defaults)
            names |= {r["_model"] for r in self.requests if r.get("_model")}
        return sorted(names)

    # -- lifecycle ------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        return app

    async def _serve_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # wake hung requests first, so stop() is prompt
        await super()._serve_stop()

    # -- handlers (server thread) ---------------------------------------------------------

    async def _embeddings(self, request: web.Request) -> web.Response:
        """OpenAI embeddings: a deterministic bag-of-words vector of EMBEDDING_DIMENSION,
        so texts sharing words are close, as real embeddings of them would be."""
        body = await request.json()
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        with self._lock:
            self.requests.append({**body, "_model": body.get("model"), "_headers": {}})
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(text)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts) or 1
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "model-server"}
            for name in self._known_models()
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            return _error(400, f"Invalid JSON body: {exc}", "invalid_request_error", None)
        model = _strip_provider(str(body.get("model") or ""))
        record = dict(body)
        record["_model"] = model
        record["_headers"] = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(record)
        if not model:
            return _error(400, "you must provide a model parameter", "invalid_request_error", None)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(
                400, "'messages' must be a non-empty array", "invalid_request_error", None
            )

        behaviour = self._next_behaviour(model)
        name, _, arg = behaviour.partition(":")
        if name == "429":
            seconds = arg or "1"
            return _error(
                429,
                f"Rate limit reached for {model}. Please try again in {seconds}s.",
                "rate_limit_error",
                "rate_limit_exceeded",
                **{"Retry-After": seconds},
            )
        if name == "500":
            return _error(
                500, "The server had an error while processing your request.", "server_error", None
            )
        if name == "503":
            return _error(503, "The server is overloaded or not ready yet.", "server_error", None)
        if name == "cut" and not body.get("stream"):
            return _error(500, "The server dropped the answer.", "server_error", None)
        if name == "bad":
            return web.Response(
                status=200,
                text='{"id": "chatcmpl-broken", "choices": [',
                content_type="application/json",
            )
        if name in {"hang", "delay"}:
            seconds = float(arg) / 1000 if name == "delay" else float(arg or 30)
            if not await self._pause(seconds):
                return _error(503, "The server is shutting down.", "server_error", None)

        if name == "text":
            reply = arg
        elif name == "cannot":
            reply = CANNOT
        else:
            reply = build_answer(body["messages"], cited=name != "uncited")
        return await self._reply(request, body, model, behaviour, reply)

    async def _reply(
        self, request: web.Request, body: dict, model: str, behaviour: str, reply: str
    ) -> web.StreamResponse:
        prompt_tokens = max(1, len(message_text(body["messages"])) // 4)
        completion_tokens = max(1, len(reply) // 4)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        ident = f"chatcmpl-{next(self._ids):08d}{id(self) % 10_000:04d}"
        created = int(time.time())
        with self._lock:
            first_token_s, tokens_per_s = self._pacing.get(model, (0.0, 0.0))
        tokens = tokens_of(reply)
        name, _, arg = behaviour.partition(":")
        if not body.get("stream"):
            wait = first_token_s + (len(tokens) / tokens_per_s if tokens_per_s else 0.0)
            if wait and not await self._pause(wait):
                return _error(503, "The server is shutting down.", "server_error", None)
            message: dict[str, Any] = {"role": "assistant", "content": reply}
            if name == "think":
                message["reasoning_content"] = SECRET_THOUGHT
            return web.json_response(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)  # headers at once; tokens follow at the model's pace

        async def send(choices: list[dict], **extra: Any) -> None:
            chunk = {**base, "choices": choices, **extra}
            if include_usage and "usage" not in extra:
                chunk["usage"] = None
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        def delta(**fields: Any) -> list[dict]:
            return [{"index": 0, "delta": fields, "logprobs": None, "finish_reason": None}]

        if first_token_s and not await self._pause(first_token_s):
            return response
        await send(delta(role="assistant", content=""))
        if name == "think":
            for word in tokens_of(SECRET_THOUGHT):
                await send(delta(reasoning_content=word))
            call = {"index": 0, "id": "call_1", "type": "function"}
            call["function"] = {"name": "lookup", "arguments": '{"q": "secret"}'}
            await send(delta(tool_calls=[call]))
        cut_after = (int(arg) if arg else len(tokens) // 2) if name == "cut" else None
        for number, token in enumerate(tokens):
            if number == cut_after:
                # Dropped mid-answer: no finish_reason, no usage, no [DONE].
                if request.transport is not None:
                    request.transport.abort()
                return response
            if number and tokens_per_s and not await self._pause(1 / tokens_per_s):
                return response
            await send(delta(content=token))
        await send([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])
        if include_usage:
            await send([], usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless the server stops meanwhile; False when it is stopping."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()
