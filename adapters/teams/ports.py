"""The small interface between the Teams logic and the Bot Framework SDK.

Everything here speaks the Bot Framework's JSON wire format (activities, conversation
references, channel accounts as plain dicts). `adapters/teams/sdk.py` implements it with
botbuilder; a move to the Microsoft 365 Agents SDK replaces that one module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Activity = dict[str, Any]


class AuthenticationFailed(Exception):
    """The request's token did not prove it came from the Bot Framework for this bot."""


class MalformedActivity(ValueError):
    """The body is JSON but not an activity the Bot Framework's schema can read."""


@dataclass(frozen=True, slots=True)
class InvokeReply:
    """The HTTP answer to an `invoke` activity (Teams waits for it)."""

    status: int = 200
    body: Any = field(default_factory=dict)


class Turn(Protocol):
    """One turn of a conversation: the inbound activity (or a proactive continuation) and
    what the bot may do in it."""

    @property
    def activity(self) -> Activity: ...

    async def send(self, activity: Activity) -> str | None:
        """Send into the conversation; returns the id the channel gave the activity."""

    async def update(self, activity_id: str, activity: Activity) -> None:
        """Replace an activity the bot sent in this conversation."""

    async def member(self, user_id: str) -> dict[str, Any] | None:
        """One member of the conversation (or its team) from the roster, None if unknown."""

    async def members(self) -> list[dict[str, Any]]:
        """Every member of the conversation (a channel: its team), all pages."""


TurnHandler = Callable[[Turn], Awaitable[InvokeReply | None]]


class Transport(Protocol):
    async def authenticate(self, authorization: str | None, activity: Activity) -> object:
        """Validate the request's token for this activity; raises AuthenticationFailed, or
        MalformedActivity when the activity cannot be read."""

    async def run_turn(
        self, authenticated: object, activity: Activity, handler: TurnHandler
    ) -> InvokeReply | None: ...

    async def continue_conversation(
        self, reference: dict[str, Any], handler: Callable[[Turn], Awaitable[None]]
    ) -> None:
        """A proactive turn in the referenced conversation."""

    async def create_conversation(
        self,
        service_url: str,
        parameters: dict[str, Any],
        handler: Callable[[Turn], Awaitable[None]],
    ) -> None:
        """Create a conversation (Bot Framework `ConversationParameters`, e.g. a 1:1 chat
        with one member) and run a proactive turn in it."""
