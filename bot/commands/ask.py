"""`answerdesk ask`: a cited answer, as the service gives it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.commands.common import Subparsers, UsageError, operate
from bot.settings import Settings
from core.answering.types import Asker, Audience, Question


def register(sub: Subparsers) -> None:
    ask = sub.add_parser("ask", help="answer a question as a given user, with citations")
    ask.set_defaults(handler=handle)
    ask.add_argument("question", nargs="?")
    ask.add_argument("--as", dest="as_email", metavar="EMAIL")
    ask.add_argument(
        "--audience",
        default="dm",
        help="who reads the reply: dm (default), public, or members:a@x,b@y",
    )
    ask.add_argument(
        "--file", type=Path, help="JSON lines with question, as, optional audience; JSON out"
    )
    ask.add_argument("--conversation", help="conversation/thread id (enables follow-ups)")
    ask.add_argument(
        "--stream",
        action="store_true",
        help="print the answer as the model writes it (status steps on stderr), then the "
        "checked answer",
    )
    ask.add_argument("--json", action="store_true")


def _question(text: Any, email: Any, audience: Any, where: str, conversation: Any) -> Question:
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"ask: {where}: the question is empty")
    if not isinstance(email, str) or "@" not in email:
        raise UsageError(f"ask: {where}: give the asker's email (--as EMAIL)")
    try:
        parsed = Audience.parse(audience if isinstance(audience, str) else "")
    except ValueError as exc:
        raise UsageError(f"ask: {where}: {exc}") from None
    return Question(
        text=text,
        asker=Asker(email=email.strip().lower()),
        audience=parsed,
        conversation_id=str(conversation) if conversation else None,
    )


def _questions(args: argparse.Namespace) -> list[Question]:
    if (args.question is None) == (args.file is None):
        raise UsageError("ask: give either QUESTION or --file QUESTIONS.jsonl")
    if args.file is None:
        return [
            _question(args.question, args.as_email, args.audience, "question", args.conversation)
        ]
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"ask: cannot read {args.file}: {exc}") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"ask: {args.file} line {number}: invalid JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise UsageError(f"ask: {args.file} line {number}: expected an object")
        questions.append(
            _question(
                item.get("question"),
                item.get("as", args.as_email),
                item.get("audience", args.audience),
                f"{args.file} line {number}",
                item.get("conversation", args.conversation),
            )
        )
    return questions


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from bot import operations  # the service's whole wiring: only when it runs

    if args.stream and args.file is not None:
        raise UsageError("ask: --stream answers one QUESTION, not --file")
    questions = _questions(args)
    params = {
        "questions": [
            {
                "text": q.text,
                "email": q.asker.email,
                "audience": str(q.audience),
                "conversation": q.conversation_id,
            }
            for q in questions
        ]
    }
    if args.stream:
        printer = StreamPrinter(as_json=args.json)
        answers = operate(
            settings,
            "ask",
            params,
            lambda services: operations.ask(services, params, printer.emit),
            on_progress=printer.emit,
        )
        printer.end()
    else:
        answers = operate(
            settings, "ask", params, lambda services: operations.ask(services, params)
        )
    for answer in answers:
        if args.json or args.file is not None:
            print(json.dumps(answer, ensure_ascii=False))
        else:
            print(format_answer(answer))
    return 0


class StreamPrinter:
    """`ask --stream`: the draft on stdout as it comes (a restart says so), status steps on
    stderr; with --json, every event as a JSON line on stdout."""

    def __init__(self, as_json: bool) -> None:
        self._json = as_json
        self._open_line = False

    async def emit(self, event: dict) -> None:
        if self._json:
            print(json.dumps(event, ensure_ascii=False), flush=True)
        elif event.get("status"):
            print(f"… {event['status']}", file=sys.stderr, flush=True)
        elif event.get("restart"):
            print("\n[checking again…]", flush=True)
            self._open_line = False
        elif event.get("delta"):
            sys.stdout.write(event["delta"])
            sys.stdout.flush()
            self._open_line = True

    def end(self) -> None:
        """A blank line between the draft and the checked answer."""
        if self._open_line:
            print("\n", flush=True)
            self._open_line = False


def format_answer(answer: dict) -> str:
    lines = [answer["text"].strip()]
    if answer["citations"]:
        lines.append("")
        for c in answer["citations"]:
            page = f", p. {c['page']}" if c["page"] else ""
            lines.append(f"[{c['n']}] {c['title']} — {c['source']}{page}")
    for notice in answer["notices"]:
        lines.append(f"⚠ {notice['message']}")
    tier = f" · {answer['tier']}" if answer["tier"] else ""
    if answer.get("ticket"):
        lines.append(f"ticket {answer['ticket']['id']}")
    lines.append(f"— {answer['mode']}{tier} · request {answer['request_id']}")
    return "\n".join(lines)
