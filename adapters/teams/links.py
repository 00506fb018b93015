"""Links into Teams built from a conversation reference, without an API call (a ticket links
back to the conversation it came from).

Teams' documented deep links:

- a chat message: ``https://teams.microsoft.com/l/message/<chat id>/<message id>?context=
  {"contextType":"chat"}`` — group chats, whose Bot Framework conversation id
  (``19:…@thread.v2``) is the chat's id;
- a channel thread: ``https://teams.microsoft.com/l/message/<channel id>/<parent message
  id>?tenantId=…&groupId=…&parentMessageId=…`` — a channel conversation id is
  ``<channel id>;messageid=<parent message id>``; ``groupId`` (the team's Microsoft 365 group)
  is added when the activity named it.

A 1:1 chat with the bot has no link: its Bot Framework id (``a:…``) is not a chat id Teams'
client opens, and no one but the asker could read it anyway.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from adapters.teams.activities import CHANNEL, GROUP_CHAT, kind_of
from core.conversation.types import ConversationRef

MESSAGE_LINK = "https://teams.microsoft.com/l/message"
_CHAT_CONTEXT = json.dumps({"contextType": "chat"}, separators=(",", ":"))


def conversation_link(where: ConversationRef) -> str | None:
    kind = where.extra.get("conversation_type") or kind_of(where.conversation)
    if kind == CHANNEL:
        channel, _, parent = where.conversation.partition(";messageid=")
        if not parent:
            return None
        query = {"tenantId": where.tenant, "parentMessageId": parent}
        if where.extra.get("team_group_id"):
            query["groupId"] = where.extra["team_group_id"]
        return f"{MESSAGE_LINK}/{quote(channel, safe='')}/{parent}?{urlencode(query)}"
    if kind == GROUP_CHAT and where.message:
        query = {"tenantId": where.tenant, "context": _CHAT_CONTEXT}
        chat = quote(where.conversation, safe="")
        return f"{MESSAGE_LINK}/{chat}/{quote(where.message, safe='')}?{urlencode(query)}"
    return None
