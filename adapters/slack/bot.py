"""The Slack side of a conversation: a Slack event becomes a core Question, the core's
Answer becomes a threaded, cited Block Kit reply. Everything Slack-specific stays here.

Every Web API call uses the client handed in with the event: Bolt's ``context.client``,
which carries the token of the workspace (or Enterprise Grid org) the event came from, so
one bot serves every installation."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import (
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_HUMAN,
    ACTION_PRIVATE,
    render_answer,
    render_notice_only,
    render_placeholder,
)
from adapters.slack.store import PostedRequest, SlackStore
from core.answering.redaction import redact_pii
from core.answering.service import AnswerService
from core.answering.types import Asker, Audience, Question
from core.directory import Directory, PlatformIdentity
from core.tickets import TicketProvider, TicketRequest

log = structlog.get_logger()
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
UNKNOWN_MEMBER = "unknown-slack-member-{}@invalid"  # resolves to `public` only: fail closed


@dataclass(frozen=True, slots=True)
class SlackConfig:
    user_cache_ttl_s: float = 3600.0
    channel_cache_ttl_s: float = 300.0
    post_interval_s: float = 1.0  # Slack allows about one message per second per channel
    post_attempts: int = 4
    thread_followups: bool = True
    # Answers in flight at once; more wait their turn without using the CPU, so acks and
    # buttons stay fast under a burst.
    max_concurrent_answers: int = 8


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    team_id: str
    user_id: str
    channel_id: str
    text: str
    ts: str
    thread_ts: str | None
    enterprise_id: str | None = None

    @property
    def reply_thread(self) -> str:
        return self.thread_ts or self.ts


def strip_mentions(text: str) -> str:
    return re.sub(r"\s+", " ", _MENTION.sub(" ", text)).strip()


class SlackBot:
    def __init__(
        self,
        answers: AnswerService,
        directory: Directory,
        tickets: TicketProvider,
        store: SlackStore,
        config: SlackConfig | None = None,
    ) -> None:
        self._answers = answers
        self._directory = directory
        self._tickets = tickets
        self._store = store
        self.config = config or SlackConfig()
        # (team, channel): one channel id is seen from several workspaces (shared channels).
        self._channels: dict[tuple[str, str], tuple[float, Audience]] = {}
        # Pacing stays per channel: Slack's one-message-a-second limit is the channel's.
        self._pacing: dict[str, asyncio.Lock] = {}
        self._answering = asyncio.Semaphore(self.config.max_concurrent_answers)
        self._last_post: dict[str, float] = {}

    # --- questions ------------------------------------------------------------------

    async def answer_message(self, client: AsyncWebClient, message: IncomingMessage) -> None:
        async with self._answering:
            await self._answer_message(client, message)

    async def _answer_message(self, client: AsyncWebClient, message: IncomingMessage) -> None:
        text = strip_mentions(message.text)
        placeholder = await self._post(
            client,
            message.channel_id,
            None,
            thread_ts=message.reply_thread,
            **render_placeholder(),
        )
        email = await self.email_of(client, message.team_id, message.user_id, message.enterprise_id)
        audience = await self.audience_of(
            client, message.team_id, message.channel_id, message.enterprise_id
        )
        question = Question(
            text=text,
            asker=Asker(
                email=email,
                platform="slack",
                platform_user_id=message.user_id,
                tenant_id=message.team_id,
            ),
            audience=audience,
            conversation_id=f"slack:{message.team_id}:{message.channel_id}:{message.reply_thread}",
            platform="slack",
        )
        answer = await self._answers.answer(question)
        await self._store.save_request(
            PostedRequest(
                answer.request_id,
                message.team_id,
                message.channel_id,
                message.reply_thread,
                message.user_id,
                redact_pii(text).text,
            )
        )
        payload = render_answer(answer)
        if placeholder:
            await self._update(
                client, message.channel_id, placeholder, answer.request_id, **payload
            )
        else:
            await self._post(
                client,
                message.channel_id,
                answer.request_id,
                thread_ts=message.reply_thread,
                **payload,
            )

    async def is_follow_up(self, channel_id: str, thread_ts: str | None) -> bool:
        return (
            self.config.thread_followups
            and thread_ts is not None
            and await self._store.is_our_thread(channel_id, thread_ts)
        )

    # --- identity and audience ----------------------------------------------------------

    async def email_of(
        self,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        enterprise_id: str | None = None,
    ) -> str | None:
        """The directory's email for the user (tenant: the workspace, then the org), else
        the Slack profile email, cached per workspace."""
        for tenant in filter(None, (team_id, enterprise_id)):
            known = await self._directory.resolve_identity(
                PlatformIdentity("slack", tenant, user_id)
            )
            if known.known:
                return known.email
        fresh, email = await self._store.cached_email(
            team_id, user_id, self.config.user_cache_ttl_s
        )
        if fresh:
            return email
        try:
            response = await client.users_info(user=user_id)
            email = (response["user"].get("profile") or {}).get("email")
        except SlackApiError as exc:
            log.warning("users.info failed", error=exc.response.get("error"), user=user_id)
            return None
        email = email.lower() if email else None
        await self._store.save_email(team_id, user_id, email)
        return email

    async def audience_of(
        self,
        client: AsyncWebClient,
        team_id: str,
        channel_id: str,
        enterprise_id: str | None = None,
    ) -> Audience:
        key = (team_id, channel_id)
        cached = self._channels.get(key)
        if cached and time.monotonic() - cached[0] < self.config.channel_cache_ttl_s:
            return cached[1]
        try:
            info = (await client.conversations_info(channel=channel_id))["channel"]
        except SlackApiError as exc:
            log.warning("conversations.info failed", error=exc.response.get("error"))
            return Audience("public")  # unknown channel: the safest audience
        if info.get("is_im"):
            audience = Audience("dm")
        elif info.get("is_private") or info.get("is_mpim") or info.get("is_group"):
            members = await self._members(client, channel_id)
            emails = []
            for member in members:
                email = await self.email_of(client, team_id, member, enterprise_id)
                emails.append(email or UNKNOWN_MEMBER.format(member.lower()))
            audience = Audience("members", tuple(sorted(set(emails))))
        else:
            audience = Audience("public")
        self._channels[key] = (time.monotonic(), audience)
        return audience

    async def _members(self, client: AsyncWebClient, channel_id: str) -> list[str]:
        members: list[str] = []
        cursor = None
        while True:
            response = await client.conversations_members(
                channel=channel_id, cursor=cursor, limit=200
            )
            members.extend(response["members"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members

    # --- buttons ----------------------------------------------------------------------------

    async def on_action(
        self,
        client: AsyncWebClient,
        action_id: str,
        request_id: str,
        user_id: str,
        team_id: str,
        enterprise_id: str | None = None,
    ) -> None:
        posted = await self._store.get_request(request_id)
        if posted is None:
            log.warning("button for an unknown request", request_id=request_id)
            return
        if action_id in (ACTION_FEEDBACK_UP, ACTION_FEEDBACK_DOWN):
            value = 1 if action_id == ACTION_FEEDBACK_UP else -1
            thread = f"{posted.channel_id}:{posted.thread_ts}"
            downs = await self._store.record_feedback(request_id, user_id, value, thread)
            # Offered once per thread, whichever replica sees the second 👎 (two votes
            # handled at the same moment must not both post the offer).
            if value < 0 and downs >= 2 and await self._store.claim_event(f"offer:{thread}"):
                await self._post(
                    client,
                    posted.channel_id,
                    request_id,
                    thread_ts=posted.thread_ts,
                    text="This doesn't seem to be helping. Would you like a person to take over?",
                    blocks=_offer_human(request_id),
                )
        elif action_id == ACTION_HUMAN:
            email = await self.email_of(client, team_id, user_id, enterprise_id)
            ref = await self._tickets.create(
                TicketRequest(
                    request_id=request_id,
                    conversation_id=f"slack:{posted.team_id}:{posted.channel_id}:{posted.thread_ts}",
                    asker=email,
                    question=posted.question,
                    reason="asked for a human (Slack button)",
                )
            )
            link = f"<{ref.url}|{ref.id}>" if ref.url else ref.id
            await self._post(
                client,
                posted.channel_id,
                request_id,
                thread_ts=posted.thread_ts,
                **render_notice_only(
                    f"🙋 I've opened ticket {link}; a colleague will follow up here.", request_id
                ),
            )
        elif action_id == ACTION_PRIVATE:
            await self._answer_privately(client, posted, user_id, team_id, enterprise_id)

    async def _answer_privately(
        self,
        client: AsyncWebClient,
        posted: PostedRequest,
        user_id: str,
        team_id: str,
        enterprise_id: str | None,
    ) -> None:
        if user_id != posted.user_id:
            return  # only the asker may have the asker-only answer
        email = await self.email_of(client, team_id, user_id, enterprise_id)
        answer = await self._answers.answer(
            Question(
                text=posted.question,
                asker=Asker(email=email, platform="slack", platform_user_id=user_id),
                audience=Audience("dm"),
                platform="slack",
            )
        )
        payload = render_answer(answer, private_button=False)
        try:
            await client.chat_postEphemeral(
                channel=posted.channel_id,
                user=user_id,
                thread_ts=posted.thread_ts,
                text=payload["text"],
                blocks=payload["blocks"],
            )
        except SlackApiError as exc:
            log.error(
                "private answer failed",
                request_id=answer.request_id,
                error=exc.response.get("error"),
            )

    # --- posting ------------------------------------------------------------------------------

    async def _post(
        self, client: AsyncWebClient, channel: str, request_id: str | None, **payload: Any
    ) -> str | None:
        payload = {**payload, "unfurl_links": False, "unfurl_media": False}
        response = await self._send(client, "chat_postMessage", channel, request_id, payload)
        return response["ts"] if response else None

    async def _update(
        self, client: AsyncWebClient, channel: str, ts: str, request_id: str, **payload: Any
    ) -> None:
        payload.pop("unfurl_links", None)
        payload.pop("unfurl_media", None)
        await self._send(client, "chat_update", channel, request_id, {**payload, "ts": ts})

    async def _send(
        self,
        client: AsyncWebClient,
        method: str,
        channel: str,
        request_id: str | None,
        payload: dict[str, Any],
    ) -> Any:
        """Paced per channel; retried with backoff on top of the client's own retries; a
        failure is logged with the request id, never dropped silently."""
        lock = self._pacing.setdefault(channel, asyncio.Lock())
        for attempt in range(1, self.config.post_attempts + 1):
            async with lock:
                wait = (
                    self._last_post.get(channel, 0) + self.config.post_interval_s - time.monotonic()
                )
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_post[channel] = time.monotonic()
                try:
                    return await getattr(client, method)(channel=channel, **payload)
                except SlackApiError as exc:
                    error = exc.response.get("error")
                except Exception as exc:  # network trouble: same treatment
                    error = type(exc).__name__
            log.warning(
                "slack post failed",
                method=method,
                request_id=request_id,
                error=error,
                attempt=attempt,
            )
            await asyncio.sleep(min(2**attempt, 10))
        log.error("slack post gave up", method=method, request_id=request_id, channel=channel)
        return None


def _offer_human(request_id: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "This doesn't seem to be helping. Would you like a person to take over?",
            },
        },
        {
            "type": "actions",
            "block_id": "answerdesk_offer_human",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_HUMAN,
                    "text": {"type": "plain_text", "text": "Talk to a human"},
                    "value": request_id,
                }
            ],
        },
    ]
