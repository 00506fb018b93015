"""The conversation layer's vocabulary: where a conversation is, who speaks, what was posted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """Where a conversation happens, in any platform's terms: enough to post into it again.

    Slack: tenant = team id, conversation = channel id, thread = thread ts. Teams: tenant =
    tenant id, conversation = conversation id, thread = the reply chain ("" when the chat
    has no threads)."""

    platform: str  # "slack" | "teams"
    tenant: str
    conversation: str
    thread: str = ""
    message: str | None = None  # the message being answered (the asker's)
    # Platform details a surface needs to reach the conversation again from outside a turn
    # (Slack: the Enterprise Grid org id; Teams: the service URL).
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def conversation_id(self) -> str:
        """The key conversation memory and tickets use for this thread."""
        return f"{self.platform}:{self.tenant}:{self.conversation}:{self.thread}"

    @property
    def thread_key(self) -> str:
        """The thread, whichever tenant's member spoke in it (a channel shared by several
        Slack workspaces is one thread for votes and follow-ups)."""
        return f"{self.platform}:{self.conversation}:{self.thread}"


@dataclass(frozen=True, slots=True)
class ChatUser:
    """A person as the platform names them."""

    id: str  # Slack user id, Teams AAD object id
    # Where the directory may know this id, most specific first (Slack: the workspace, then
    # the Enterprise Grid org; Teams: the tenant).
    tenants: tuple[str, ...] = ()


class ConversationKind(StrEnum):
    DIRECT = "direct"  # one person and the bot
    PUBLIC = "public"  # anyone in the company may read it
    PRIVATE = "private"  # only its members may read it


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    kind: ConversationKind
    members: tuple[str, ...] = ()  # platform user ids, for a private conversation


@dataclass(frozen=True, slots=True)
class Turn:
    """One message addressed to the bot, mentions already removed by the adapter."""

    where: ConversationRef
    asker: ChatUser
    text: str
    # The working message an earlier attempt at this turn posted before its replica died
    # (core/conversation/leases.py): the reply goes there instead of into a new message.
    resume_message: str | None = None


@dataclass(frozen=True, slots=True)
class PostedAnswer:
    """An answer as posted: what buttons, votes and later replies act on."""

    request_id: str
    where: ConversationRef
    asker_id: str  # the asker's platform user id: only they may have the private answer
    question: str  # PII-redacted
    answer_message: str | None = None  # the posted answer's message id, once known


@dataclass(frozen=True, slots=True)
class Vote:
    voter: str  # platform user id
    value: int  # +1 / -1
