"""One Teams conversation as the bot reaches it: inside the inbound turn while Teams waits
for it, then with proactive turns (the conversation reference) once the reply window has
passed or outside any turn (an operator's `say`, an agent's reply, a ticket's news)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from adapters.teams.ports import Activity, Transport, Turn

T = TypeVar("T")


class Connector:
    def __init__(
        self, transport: Transport, reference: dict[str, Any], turn: Turn | None = None
    ) -> None:
        self._transport = transport
        self.reference = reference  # Bot Framework ConversationReference (JSON)
        self._turn = turn
        self.proactive = turn is None

    @property
    def conversation_id(self) -> str:
        return str((self.reference.get("conversation") or {}).get("id") or "")

    @property
    def service_url(self) -> str:
        return str(self.reference.get("serviceUrl") or "")

    def elsewhere(self, reference: dict[str, Any]) -> Connector:
        """Another conversation, reached proactively with its reference."""
        return Connector(self._transport, reference)

    def end_turn(self) -> None:
        """Teams stopped waiting for the turn: from now on, everything goes proactively."""
        self.proactive = True

    async def send(self, activity: Activity) -> str | None:
        """Send into the conversation; the id Teams gave the activity."""
        return await self._in_turn(lambda turn: turn.send(activity))

    async def update(self, activity_id: str, activity: Activity) -> None:
        await self._in_turn(lambda turn: turn.update(activity_id, activity))

    async def member(self, user_id: str) -> dict[str, Any] | None:
        return await self._in_turn(lambda turn: turn.member(user_id))

    async def members(self) -> list[dict[str, Any]]:
        return await self._in_turn(lambda turn: turn.members())

    async def _in_turn(self, work: Callable[[Turn], Awaitable[T]]) -> T:
        if not self.proactive and self._turn is not None:
            return await work(self._turn)
        done: list[T] = []

        async def run(turn: Turn) -> None:
            done.append(await work(turn))

        await self._transport.continue_conversation(self.reference, run)
        if not done:
            raise RuntimeError("the proactive turn did not run")
        return done[0]

    async def send_to_user(
        self, user_id: str, tenant_id: str, activity: Activity
    ) -> tuple[Connector, str | None]:
        """Send to one person (their Bot Framework id) in their 1:1 chat with the bot
        (created, or found again, by Teams): a connector for that chat, whose reference is
        worth keeping, and the sent activity's id."""
        bot = self.reference.get("bot") or {}
        parameters = {
            "isGroup": False,
            "bot": bot,
            "members": [{"id": user_id}],
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        }
        created: list[dict[str, Any]] = []
        sent: list[str | None] = []

        async def run(turn: Turn) -> None:
            conversation = (turn.activity.get("conversation") or {}).get("id")
            if not conversation:
                raise RuntimeError("Teams created no conversation")
            created.append(
                {
                    "bot": bot,
                    "user": {"id": user_id},
                    "conversation": {
                        "id": conversation,
                        "conversationType": "personal",
                        "tenantId": tenant_id,
                    },
                    "channelId": self.reference.get("channelId") or "msteams",
                    "serviceUrl": self.service_url,
                }
            )
            sent.append(await turn.send(activity))

        await self._transport.create_conversation(self.service_url, parameters, run)
        if not created or not sent:
            raise RuntimeError("the 1:1 chat was not created")
        return Connector(self._transport, created[0]), sent[0]
