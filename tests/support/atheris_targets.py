"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers behind the service's edges:
``python tests/support/atheris_targets.py TARGET [SEED_DIR] -runs=N -seed=S`` (seed inputs:
real examples of each format, so the mutations start from the shapes that reach deep). Each
target states what may come out of its parser for any input (a value, or the refusal its
caller turns into a 4xx or exit 2); anything else — any other exception — is a crash, and
libFuzzer exits non-zero with the input that caused it.

Targets: ``slack`` (signature check, body parsing), ``teams`` (activity shape check, then
every reader of an activity the check let through), ``tickets`` (each ticket system's loop-
back verifier and payload parser), ``files`` (ACL file, directory YAML/CSV, query library,
configuration YAML)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["adapters", "core", "bot"]):
    from adapters.slack.app import _parse, signature_valid
    from adapters.teams import activities
    from adapters.tickets.hooks import FORMATS
    from bot.settings import CONFIG_ENV, ConfigError, load_settings
    from core.acl import AclFileError, load_policy
    from core.directory import DirectoryFileError, load_directory_file
    from core.evaluation.library import LibraryError, load_library

SCRATCH = Path(tempfile.mkdtemp(prefix="answerdesk-atheris-"))
# What the HTTP handlers catch and answer with 4xx.
PARSE_REFUSALS = (ValueError, TypeError, KeyError, AttributeError)


KINDS = ("acl.yaml", "people.yaml", "people.csv", "library.yaml", "library.jsonl", "config.yaml")
PROVIDERS = sorted(FORMATS)
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None


def slack(data: bytes) -> None:
    """Input: one byte choosing the content type, then the body. The signature headers are
    cut from the body's first bytes, so they range over anything too."""
    if not data:
        return
    body = data[1:]
    timestamp, signature = body[:12].decode("latin-1"), body[:72].decode("latin-1")
    assert signature_valid(b"secret", body, timestamp, signature) in (True, False)
    try:
        parsed = _parse(body, CONTENT_TYPES[data[0] % 2])
    except (ValueError, KeyError):  # the handler's 400
        return
    assert isinstance(parsed, dict)


TEAMS_READERS = (
    activities.tenant_of,
    activities.user_of,
    activities.conversation_type,
    activities.strip_mentions,
    activities.parse_message,
    activities.parse_feedback,
    activities.parse_card_submit,
    activities.bot_added_in_personal_scope,
)


def teams(data: bytes) -> None:
    """Input: the activity's JSON."""
    activity = _json(data)
    if not isinstance(activity, dict) or not isinstance(activity.get("type"), str):
        return  # the endpoint's 400
    if activities.shape_problem(activity) is not None:
        return  # the endpoint's 400
    for read in TEAMS_READERS:
        read(activity)


HOOK_HEADERS = (
    "X-Answerdesk-Timestamp",
    "X-Answerdesk-Signature",
    "X-Hub-Signature",
    "X-Zendesk-Webhook-Signature",
    "X-Zendesk-Webhook-Signature-Timestamp",
    "Authorization",
)


def tickets(data: bytes) -> None:
    """Input: one byte choosing the ticket system, then the payload's JSON (its first bytes
    are also every signature header's value)."""
    if not data:
        return
    module = FORMATS[PROVIDERS[data[0] % len(PROVIDERS)]]
    body = data[1:]
    headers = {name: body[:80].decode("utf-8", "surrogateescape") for name in HOOK_HEADERS}
    assert module.verify("secret", headers, body) in (True, False)
    payload = _json(body)
    if not isinstance(payload, dict):
        return
    try:
        module.parse(payload)
    except PARSE_REFUSALS:  # the hook's 400
        return


def files(data: bytes) -> None:
    """Input: one byte choosing the kind of file, then its content."""
    if not data:
        return
    kind = KINDS[data[0] % len(KINDS)]
    path = SCRATCH / kind
    path.write_bytes(data[1:])
    try:
        if kind == "acl.yaml":
            load_policy(path)
        elif kind.startswith("people"):
            load_directory_file(path)
        elif kind.startswith("library"):
            load_library(path)
        else:
            os.environ[CONFIG_ENV] = str(path)
            load_settings()
    except (AclFileError, DirectoryFileError, LibraryError, ConfigError):  # exit 2
        return
    finally:
        os.environ.pop(CONFIG_ENV, None)


TARGETS = {"slack": slack, "teams": teams, "tickets": tickets, "files": files}
EVERY = tuple(TARGETS.values())


def every(data: bytes) -> None:
    """All four in one process (one start-up): the first byte chooses the target."""
    if data:
        EVERY[data[0] % len(EVERY)](data[1:])


TARGETS["all"] = every

if __name__ == "__main__":
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
