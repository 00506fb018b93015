"""Inbound Teams activities as the bot's own small types. Pure functions over the Bot
Framework's JSON wire format: no SDK, no I/O."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from adapters.teams.ports import Activity
from core.conversation.messages import Action
from core.conversation.types import ChatUser, ConversationRef, Turn

PERSONAL, GROUP_CHAT, CHANNEL = "personal", "groupChat", "channel"
PLATFORM = "teams"
# The Adaptive Card's Action.Submit values, one per button.
ACTIONS = {Action.HUMAN: "talk_to_human", Action.PRIVATE: "private_answer"}
_SUBMITTED = {value: action for action, value in ACTIONS.items()}
_AT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class TeamsUser:
    id: str  # the Bot Framework id ("29:…")
    aad_object_id: str | None
    name: str | None = None

    def chat_user(self, tenant_id: str) -> ChatUser:
        """As the conversation layer names people: by Entra object id (what the directory
        knows), else by the Bot Framework id."""
        return ChatUser(self.aad_object_id or self.id, (tenant_id,))


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    activity_id: str
    conversation_id: str
    conversation_type: str  # personal | groupChat | channel
    tenant_id: str
    user: TeamsUser
    text: str  # the bot's @mention removed
    team_id: str | None = None
    service_url: str = ""
    team_group_id: str | None = None  # the team's Microsoft 365 group (for links)

    def turn(self) -> Turn:
        """The conversation layer's turn: a Teams chat has no threads of its own (a channel
        conversation id names its reply chain)."""
        extra = {
            "conversation_type": self.conversation_type,
            "service_url": self.service_url,
            "team_id": self.team_id,
            "team_group_id": self.team_group_id,
        }
        return Turn(
            where=ConversationRef(
                platform=PLATFORM,
                tenant=self.tenant_id,
                conversation=self.conversation_id,
                message=self.activity_id or None,
                extra={key: value for key, value in extra.items() if value},
            ),
            asker=self.user.chat_user(self.tenant_id),
            text=self.text,
        )


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """👍/👎 from Teams' feedback loop on one of the bot's messages."""

    reply_to_id: str  # the id of the bot's message that was rated
    conversation_id: str
    tenant_id: str
    user: TeamsUser
    reaction: str  # like | dislike
    text: str | None  # what the user wrote in the feedback form

    @property
    def action(self) -> Action:
        return Action.HELPFUL if self.reaction == "like" else Action.NOT_HELPFUL


@dataclass(frozen=True, slots=True)
class CardSubmit:
    """A button pressed on the card of an answer ("Talk to a human", "Send me the full
    answer privately")."""

    action: Action
    request_id: str
    conversation_id: str
    tenant_id: str
    user: TeamsUser


_ID = re.compile(r"[^\s/?#\\\x00-\x1f\x7f]{1,512}")


def _field(activity: Activity, name: str, inner: str) -> Any:
    value = activity.get(name)
    return value.get(inner) if isinstance(value, dict) else None


_OBJECTS = ("channelData", "conversation", "from", "recipient")
_OBJECT_LISTS = ("entities", "membersAdded", "membersRemoved", "attachments")
_NESTED = {"channelData": ("tenant", "team", "channel")}


def shape_problem(activity: Activity) -> str | None:
    """What makes an activity unreadable by this module (None: readable). The Bot
    Framework's schema types these fields; checked once here so the readers below can rely
    on them."""
    service_url = activity.get("serviceUrl")
    if not isinstance(service_url, str) or not service_url.startswith(("https://", "http://")):
        return "serviceUrl must be an http(s) URL"  # where the answer goes: never a default
    for where, value in (
        ("id", activity.get("id")),
        ("replyToId", activity.get("replyToId")),
        ("conversation.id", _field(activity, "conversation", "id")),
    ):
        if value is not None and not (isinstance(value, str) and _ID.fullmatch(value)):
            return f"{where} is not an id"  # ids go into the connector's URLs
    for name in _OBJECTS:
        value = activity.get(name)
        if value is not None and not isinstance(value, dict):
            return f"{name} must be an object"
        for inner in _NESTED.get(name, ()):
            nested = (value or {}).get(inner)
            if nested is not None and not isinstance(nested, dict):
                return f"{name}.{inner} must be an object"
    for name in _OBJECT_LISTS:
        value = activity.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(item, dict) for item in value)
        ):
            return f"{name} must be a list of objects"
    for entity in activity.get("entities") or []:
        if entity.get("mentioned") is not None and not isinstance(entity["mentioned"], dict):
            return "entities[].mentioned must be an object"
        if entity.get("text") is not None and not isinstance(entity["text"], str):
            return "entities[].text must be a string"
    if activity.get("text") is not None and not isinstance(activity["text"], str):
        return "text must be a string"
    value = activity.get("value")
    if isinstance(value, dict):
        for inner in ("actionValue",):
            if value.get(inner) is not None and not isinstance(value[inner], dict):
                return f"value.{inner} must be an object"
    return None


def tenant_of(activity: Activity) -> str:
    """The Entra tenant an activity comes from (lower-case; "" when absent)."""
    tenant = ((activity.get("channelData") or {}).get("tenant") or {}).get("id")
    tenant = tenant or (activity.get("conversation") or {}).get("tenantId") or ""
    return str(tenant).strip().lower()


def user_of(activity: Activity) -> TeamsUser:
    sender = activity.get("from") or {}
    aad = sender.get("aadObjectId")
    return TeamsUser(
        id=str(sender.get("id") or ""),
        aad_object_id=str(aad).lower() if aad else None,
        name=sender.get("name"),
    )


def conversation_type(activity: Activity) -> str:
    kind = (activity.get("conversation") or {}).get("conversationType")
    if kind in (PERSONAL, GROUP_CHAT, CHANNEL):
        return kind
    # Older payloads: a group conversation without a type is a group chat.
    return GROUP_CHAT if (activity.get("conversation") or {}).get("isGroup") else PERSONAL


def kind_of(conversation_id: str) -> str:
    """The conversation type its id implies (personal chats are `a:…`, channel threads carry
    `;messageid=`), for references recorded without it."""
    if conversation_id.startswith("a:"):
        return PERSONAL
    return CHANNEL if ";messageid=" in conversation_id else GROUP_CHAT


def strip_mentions(activity: Activity) -> str:
    """The message text without the bot's @mention; other mentions keep their names."""
    text = activity.get("text") or ""
    bot_id = (activity.get("recipient") or {}).get("id")
    for entity in activity.get("entities") or []:
        mentioned = entity.get("mentioned") or {}
        if entity.get("type") == "mention" and mentioned.get("id") == bot_id and entity.get("text"):
            text = text.replace(entity["text"], " ")
    text = _AT.sub(lambda m: m.group(1), text)
    text = html.unescape(_TAG.sub(" ", text))
    return re.sub(r"\s+", " ", text).strip()


def parse_message(activity: Activity) -> IncomingMessage | None:
    """A question: a message with text from a person (None for card submits, empty text)."""
    if activity.get("type") != "message" or activity.get("value") is not None:
        return None
    text = strip_mentions(activity)
    if not text:
        return None
    team = (activity.get("channelData") or {}).get("team") or {}
    return IncomingMessage(
        activity_id=str(activity.get("id") or ""),
        conversation_id=str((activity.get("conversation") or {}).get("id") or ""),
        conversation_type=conversation_type(activity),
        tenant_id=tenant_of(activity),
        user=user_of(activity),
        text=text,
        team_id=team.get("id"),
        service_url=str(activity.get("serviceUrl") or ""),
        team_group_id=team.get("aadGroupId"),
    )


def bot_added_in_personal_scope(activity: Activity) -> bool:
    if activity.get("type") != "conversationUpdate" or conversation_type(activity) != PERSONAL:
        return False
    bot_id = (activity.get("recipient") or {}).get("id")
    return any(m.get("id") == bot_id for m in activity.get("membersAdded") or [])


def parse_feedback(activity: Activity) -> FeedbackEvent | None:
    """Teams' feedback loop: `invoke` `message/submitAction` with actionName `feedback`."""
    if activity.get("type") != "invoke" or activity.get("name") != "message/submitAction":
        return None
    value = activity.get("value")
    if not isinstance(value, dict) or value.get("actionName") != "feedback":
        return None
    action = value.get("actionValue") or {}
    reaction = action.get("reaction")
    if reaction not in ("like", "dislike") or not activity.get("replyToId"):
        return None
    return FeedbackEvent(
        reply_to_id=str(activity["replyToId"]),
        conversation_id=str((activity.get("conversation") or {}).get("id") or ""),
        tenant_id=tenant_of(activity),
        user=user_of(activity),
        reaction=reaction,
        text=_feedback_text(action.get("feedback")),
    )


def _feedback_text(raw: Any) -> str | None:
    # Teams sends the form as a JSON string ('{"feedbackText":"…"}'); some clients an object.
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return raw.strip() or None
    if isinstance(raw, dict):
        text = raw.get("feedbackText")
        return str(text).strip() or None if text else None
    return None


def parse_card_submit(activity: Activity) -> CardSubmit | None:
    """The answer card's Action.Submit arrives as a message whose `value` is its data."""
    value = activity.get("value")
    if activity.get("type") != "message" or not isinstance(value, dict):
        return None
    action = _SUBMITTED.get(str(value.get("action")))
    if action is None or not value.get("request_id"):
        return None
    return CardSubmit(
        action=action,
        request_id=str(value["request_id"]),
        conversation_id=str((activity.get("conversation") or {}).get("id") or ""),
        tenant_id=tenant_of(activity),
        user=user_of(activity),
    )


def conversation_reference(activity: Activity) -> dict[str, Any]:
    """The Bot Framework `ConversationReference` of an inbound activity (what a proactive
    message needs), in its JSON form."""
    reference = {
        "activityId": activity.get("id"),
        "user": activity.get("from"),
        "bot": activity.get("recipient"),
        "conversation": activity.get("conversation"),
        "channelId": activity.get("channelId"),
        "serviceUrl": activity.get("serviceUrl"),
        "locale": activity.get("locale"),
    }
    return {key: value for key, value in reference.items() if value is not None}
