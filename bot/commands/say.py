"""`answerdesk say REQUEST_ID "text"`: post into the thread a request came from, on its
platform (an operator's tool, and the path agents' replies take)."""

from __future__ import annotations

import argparse
import sys

from bot.commands.common import Subparsers, UsageError, database, print_json, run
from bot.settings import Settings


class PostFailed(Exception):
    """The platform did not take the message (reported on stderr, exit code 1)."""


def register(sub: Subparsers) -> None:
    say = sub.add_parser("say", help="post a message into the thread a request came from")
    say.set_defaults(handler=handle)
    say.add_argument("request_id")
    say.add_argument("text", help="the message (markdown)")
    say.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    text = args.text.strip()
    if not text:
        raise UsageError("say: the text is empty")
    try:
        posted = run(_say, settings, args.request_id, text)
    except PostFailed as exc:
        print(f"say: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json(posted)
    else:
        print(
            f"posted into {posted['platform']} conversation {posted['conversation']}, "
            f"thread {posted['thread'] or '-'} (message {posted['message_id']})"
        )
    return 0


async def _say(settings: Settings, request_id: str, text: str) -> dict[str, str]:
    from bot.wiring import build_outbound
    from core.conversation.outbound import PlatformNotConfigured, UnknownRequest
    from core.conversation.ports import Unreachable

    async with database(settings) as engine:
        try:
            posted, message_id = await build_outbound(settings, engine).say(request_id, text)
        except UnknownRequest:
            raise UsageError(f"say: no answer was posted with request id {request_id}") from None
        except PlatformNotConfigured as exc:
            raise UsageError(f"say: {exc}") from None
        except Unreachable as exc:
            raise PostFailed(str(exc)) from None
    where = posted.where
    return {
        "request_id": request_id,
        "platform": where.platform,
        "tenant": where.tenant,
        "conversation": where.conversation,
        "thread": where.thread,
        "message_id": message_id,
    }
