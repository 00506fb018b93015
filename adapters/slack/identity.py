"""Slack's identity port: a user's profile email (users.info, kept in the database for
``slack.user_cache_ttl_s``) and a channel's kind and members (conversations.info,
conversations.members)."""

from __future__ import annotations

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.store import SlackStore
from core.conversation.types import ChatUser, ConversationInfo, ConversationKind, ConversationRef

log = structlog.get_logger()


class SlackIdentity:
    def __init__(self, client: AsyncWebClient, store: SlackStore, user_cache_ttl_s: float) -> None:
        self._client = client
        self._store = store
        self._user_cache_ttl_s = user_cache_ttl_s

    async def email_of(self, user: ChatUser) -> str | None:
        team_id = user.tenants[0] if user.tenants else ""  # the cache is per workspace
        fresh, email = await self._store.cached_email(team_id, user.id, self._user_cache_ttl_s)
        if fresh:
            return email
        try:
            response = await self._client.users_info(user=user.id)
            email = (response["user"].get("profile") or {}).get("email")
        except SlackApiError as exc:
            log.warning("users.info failed", error=exc.response.get("error"), user=user.id)
            return None
        email = email.lower() if email else None
        await self._store.save_email(team_id, user.id, email)
        return email

    async def describe(self, where: ConversationRef) -> ConversationInfo | None:
        try:
            info = (await self._client.conversations_info(channel=where.conversation))["channel"]
            if info.get("is_im"):
                return ConversationInfo(ConversationKind.DIRECT)
            if info.get("is_private") or info.get("is_mpim") or info.get("is_group"):
                members = await self._members(where.conversation)
                return ConversationInfo(ConversationKind.PRIVATE, tuple(members))
        except SlackApiError as exc:
            log.warning("conversations.info failed", error=exc.response.get("error"))
            return None  # unknown channel: the layer answers for the safest audience
        return ConversationInfo(ConversationKind.PUBLIC)

    async def _members(self, channel_id: str) -> list[str]:
        members: list[str] = []
        cursor = None
        while True:
            response = await self._client.conversations_members(
                channel=channel_id, cursor=cursor, limit=200
            )
            members.extend(response["members"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members
