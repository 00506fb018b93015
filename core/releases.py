"""Releases in the answer flow: which release answers a question.

A release is everything that changes answers without a code deploy (prompt, tiers and
routing, retrieval, gate, cache and policy settings); its id is a hash of that content and
is recorded on every trace and cache entry. One release is active; during a canary a second
one answers a share of the conversations. Which conversation goes where is decided by a
hash of the conversation id and the canary's id (`canary_bucket`), so a thread stays on one
release for the whole canary, on every replica, without shared state.

Every replica re-reads the release state at most every `refresh_s` (like the permission
view in core/retrieval.py): an activation or a rollback reaches all of them within seconds,
without a restart. A state that cannot be read leaves the current releases answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from core.answering.service import AnswerService
from core.answering.types import Answer, Question

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class ReleaseState:
    """Which releases answer. `active` None: the configuration file's own release."""

    active: str | None = None
    canary: str | None = None
    share: int = 0  # percent of conversations the canary answers
    version: int = 0  # bumped by every change


class ReleaseSource(Protocol):
    async def state(self) -> ReleaseState: ...


# Builds the answer service of a release (None: the configuration file's release).
BuildAnswers = Callable[[str | None], Awaitable[AnswerService]]


def canary_bucket(canary: str, conversation: str) -> int:
    """0..99 for a conversation: it is on the canary when the bucket is below the share.
    sha256("<canary id>:<conversation id>"), first 8 bytes big-endian, modulo 100."""
    digest = hashlib.sha256(f"{canary}:{conversation}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def release_for(state: ReleaseState, conversation: str | None) -> str | None:
    """The release that answers in this conversation (a question without a conversation
    is its own conversation)."""
    if state.canary is None or state.share <= 0:
        return state.active
    key = conversation or uuid.uuid4().hex
    return state.canary if canary_bucket(state.canary, key) < state.share else state.active


def _answering(state: ReleaseState) -> tuple[str | None, str | None, int]:
    return state.active, state.canary, state.share


@dataclass(frozen=True, slots=True)
class _View:
    state: ReleaseState
    services: dict[str | None, AnswerService] = field(default_factory=dict)


class ReleaseSwitch:
    """The answer service of the release that answers each question. It stands where an
    AnswerService stands: `answer(question, ...)` goes to the question's release; any other
    coroutine method taking a Question first is routed the same way; everything else is the
    active release's."""

    def __init__(
        self,
        source: ReleaseSource,
        build: BuildAnswers,
        configured: AnswerService,
        refresh_s: float = 2.0,
    ) -> None:
        self._source = source
        self._build = build
        self._configured = configured  # the configuration file's release
        self._refresh_s = refresh_s
        self._view = _View(ReleaseState(), {None: configured})
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def state(self) -> ReleaseState:
        return self._view.state

    @property
    def active(self) -> AnswerService:
        return self._view.services[self._view.state.active]

    async def answer(self, question: Question, *args: Any, **kwargs: Any) -> Answer:
        service = await self.service_for(question)
        return await service.answer(question, *args, **kwargs)

    async def service_for(self, question: Question) -> AnswerService:
        await self.refresh()
        view = self._view
        return view.services[release_for(view.state, question.conversation_id)]

    async def warm_up(self) -> None:
        await self.refresh(force=True)
        for service in self._view.services.values():
            await service.warm_up()

    async def refresh(self, force: bool = False) -> None:
        """Re-read the state when it is older than refresh_s; requests arriving meanwhile
        keep the current releases rather than wait."""
        due = force or time.monotonic() - self._checked >= self._refresh_s
        if not due or (self._lock.locked() and not force):
            return
        async with self._lock:
            if not force and time.monotonic() - self._checked < self._refresh_s:
                return
            self._checked = time.monotonic()
            try:
                state = await self._source.state()
                if _answering(state) == _answering(self._view.state):
                    return
                self._view = await self._switch(state)
            except Exception as exc:  # the releases answering now keep answering
                log.warning("release state unavailable", error=type(exc).__name__)
                return
        log.info("releases switched", active=state.active, canary=state.canary, share=state.share)

    async def _switch(self, state: ReleaseState) -> _View:
        services: dict[str | None, AnswerService] = {None: self._configured}
        for release in (state.active, state.canary):
            if release is None or release in services:
                continue
            built = self._view.services.get(release)
            if built is None:
                built = await self._build(release)
                await built.warm_up()  # before it answers, not during the first question
            services[release] = built
        return _View(state, services)

    def __getattr__(self, name: str) -> Any:
        # Anything else an AnswerService offers (config, breaker_states, new entry points):
        # the active release's; coroutine methods given a Question go to its release.
        if name.startswith("_"):
            raise AttributeError(name)
        attribute = getattr(self.active, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def routed(*args: Any, **kwargs: Any) -> Any:
            if args and isinstance(args[0], Question):
                service = await self.service_for(args[0])
                return await getattr(service, name)(*args, **kwargs)
            return await attribute(*args, **kwargs)

        return routed
