"""The Slack side of a conversation: a Slack event or click becomes a conversation-layer turn
or action, with Slack's surface and identity ports bound to the client it came with.

Every Web API call uses the client handed in with the event: Bolt's ``context.client``,
which carries the token of the workspace (or Enterprise Grid org) the event came from, so
one bot serves every installation. What happens around the answer (who asks, who reads,
records, votes, offers, tickets, the private answer) is core/conversation's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.assistant import SuggestedPrompts
from adapters.slack.identity import SlackIdentity
from adapters.slack.render import ACTION_FEEDBACK, ACTIONS, parse_feedback
from adapters.slack.store import SlackStore
from adapters.slack.stream import StreamConfig, Streaming
from adapters.slack.surface import SlackPoster, SlackSurface
from core.conversation.leases import current_lease
from core.conversation.ports import Chat
from core.conversation.service import ConversationService
from core.conversation.types import ChatUser, ConversationRef, Turn

log = structlog.get_logger()
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
PLATFORM = "slack"


@dataclass(frozen=True, slots=True)
class SlackConfig:
    user_cache_ttl_s: float = 3600.0
    post_interval_s: float = 1.0  # Slack allows about one message per second per channel
    post_attempts: int = 4
    thread_followups: bool = True
    streaming: StreamConfig = field(default_factory=StreamConfig)


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

    def turn(self) -> Turn:
        return Turn(
            where=ConversationRef(
                platform=PLATFORM,
                tenant=self.team_id,
                conversation=self.channel_id,
                thread=self.reply_thread,
                message=self.ts,
                extra={"enterprise_id": self.enterprise_id} if self.enterprise_id else {},
            ),
            asker=slack_user(self.user_id, self.team_id, self.enterprise_id),
            text=strip_mentions(self.text),
        )


def slack_user(user_id: str, team_id: str, enterprise_id: str | None) -> ChatUser:
    """The directory knows a Slack id under the workspace, or under the Grid org."""
    return ChatUser(user_id, tuple(t for t in (team_id, enterprise_id) if t))


def strip_mentions(text: str) -> str:
    return re.sub(r"\s+", " ", _MENTION.sub(" ", text)).strip()


class SlackBot:
    def __init__(
        self,
        conversations: ConversationService,
        store: SlackStore,
        config: SlackConfig | None = None,
        prompts: SuggestedPrompts | None = None,
    ) -> None:
        self._conversations = conversations
        self._store = store
        self._prompts = prompts
        self.config = config or SlackConfig()
        self._poster = SlackPoster(self.config.post_interval_s, self.config.post_attempts)
        self._streaming = Streaming(self.config.streaming)

    def chat(self, client: AsyncWebClient) -> Chat:
        """Slack's ports, bound to the client (token) of the event being handled."""
        return Chat(
            SlackSurface(client, self._poster, self._streaming),
            SlackIdentity(client, self._store, self.config.user_cache_ttl_s),
        )

    async def answer_message(self, client: AsyncWebClient, message: IncomingMessage) -> None:
        # How many answers run at once, and how long a question may wait for one, is the
        # conversation layer's answer queue (shared with the other platforms). The event's
        # claim (adapters/slack/app.py): its lease notes the working message.
        await self._conversations.answer(message.turn(), self.chat(client), current_lease())

    async def assistant_thread_started(self, client: AsyncWebClient, thread: dict) -> None:
        """Someone opened the assistant: offer suggested prompts in its thread."""
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if self._prompts is not None and channel and thread_ts:
            await self._prompts.offer(client, channel, thread_ts)

    async def is_follow_up(self, message: IncomingMessage) -> bool:
        return (
            self.config.thread_followups
            and message.thread_ts is not None
            and await self._conversations.answered_in(message.turn())
        )

    async def on_action(
        self,
        client: AsyncWebClient,
        action_id: str,
        value: str,
        user_id: str,
        team_id: str,
        enterprise_id: str | None = None,
    ) -> None:
        # A button's value is the request id; Slack's feedback buttons carry the vote too.
        action, request_id = ACTIONS.get(action_id), value
        if action_id == ACTION_FEEDBACK:
            action, request_id = parse_feedback(value) or (None, value)
        if action is None:
            log.warning("unknown slack action", action_id=action_id)
            return
        actor = slack_user(user_id, team_id, enterprise_id)
        await self._conversations.act(action, request_id, actor, self.chat(client))
