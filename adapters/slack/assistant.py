"""Slack's AI-app surface (manifest ``assistant_view``): when someone opens the assistant,
offer suggested prompts, the configured ones or the questions people ask most."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = structlog.get_logger()

MAX_PROMPTS = 4  # Slack shows at most four
MAX_TITLE_CHARS = 75


@dataclass(frozen=True, slots=True)
class AssistantConfig:
    suggested_prompts: tuple[str, ...] = ()  # empty: the most asked questions
    prompts_title: str = "Questions people ask"
    refresh_s: float = 300.0  # the most asked questions are looked up again after this


class SuggestedPrompts:
    def __init__(
        self,
        config: AssistantConfig,
        most_asked: Callable[[int], Awaitable[list[str]]] | None = None,
    ) -> None:
        self.config = config
        self._most_asked = most_asked
        self._cached: tuple[float, list[str]] | None = None

    async def questions(self) -> list[str]:
        configured = [q.strip() for q in self.config.suggested_prompts if q.strip()]
        if configured or self._most_asked is None:
            return configured[:MAX_PROMPTS]
        if self._cached and time.monotonic() - self._cached[0] < self.config.refresh_s:
            return self._cached[1]
        try:
            questions = (await self._most_asked(MAX_PROMPTS))[:MAX_PROMPTS]
        except Exception as exc:  # suggestions are a nicety: never a failure
            log.warning("most asked questions unavailable", error=type(exc).__name__)
            return []
        self._cached = (time.monotonic(), questions)
        return questions

    async def offer(self, client: AsyncWebClient, channel_id: str, thread_ts: str) -> bool:
        """assistant.threads.setSuggestedPrompts in a new assistant thread; False when there
        is nothing to suggest yet or Slack refused."""
        questions = await self.questions()
        if not questions:
            log.info("no suggested prompts yet: none configured, none asked often")
            return False
        prompts = [{"title": _title(q), "message": q} for q in questions]
        try:
            await client.assistant_threads_setSuggestedPrompts(
                channel_id=channel_id,
                thread_ts=thread_ts,
                title=self.config.prompts_title,
                prompts=prompts,
            )
        except SlackApiError as exc:
            log.warning("suggested prompts refused", error=exc.response.get("error"))
            return False
        return True


def _title(question: str) -> str:
    if len(question) <= MAX_TITLE_CHARS:
        return question
    cut = question[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return cut + "…"
