"""Links into Slack built from a conversation reference, without an API call (a ticket
links back to the thread it came from; the escalation channel links to it too).

Slack's own permalinks (``https://<workspace>.slack.com/archives/<channel>/p<ts>``) need
the workspace's domain, which events do not carry; the web client's address needs only the
ids the reference holds and opens the thread for any member who is signed in:
``https://app.slack.com/client/<team>/<channel>/thread/<channel>-<thread ts>``."""

from __future__ import annotations

from core.conversation.types import ConversationRef

WEB_CLIENT = "https://app.slack.com/client"


def thread_link(where: ConversationRef) -> str:
    base = f"{WEB_CLIENT}/{where.tenant}/{where.conversation}"
    return f"{base}/thread/{where.conversation}-{where.thread}" if where.thread else base
