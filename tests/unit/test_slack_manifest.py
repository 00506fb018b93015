"""The Slack manifest loads, and every Web API method the adapter calls has its scope."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# Scopes each method needs (Slack's method reference), any one of a set sufficing.
METHOD_SCOPES = {
    "auth.test": [set()],
    "users.info": [{"users:read"}],
    "conversations.info": [{"channels:read", "groups:read", "im:read", "mpim:read"}],
    "conversations.members": [{"channels:read", "groups:read", "im:read", "mpim:read"}],
    "chat.postMessage": [{"chat:write"}],
    "chat.update": [{"chat:write"}],
    "chat.postEphemeral": [{"chat:write"}],
    "chat.delete": [{"chat:write"}],
    "chat.startStream": [{"chat:write"}],
    "chat.appendStream": [{"chat:write"}],
    "chat.stopStream": [{"chat:write"}],
    # Either scope for now; Slack will accept only chat:write later.
    "assistant.threads.setStatus": [{"chat:write", "assistant:write"}],
    "assistant.threads.setSuggestedPrompts": [{"assistant:write"}],
}
# slack_sdk helpers and the Web API methods they call.
HELPERS = {"chat.stream": {"chat.startStream", "chat.appendStream", "chat.stopStream"}}
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "assistant_thread_started": "assistant:write",
    "app_uninstalled": None,  # sent to every app, no scope
    "tokens_revoked": None,
}


def called_methods() -> set[str]:
    source = "\n".join(p.read_text() for p in (REPO / "adapters" / "slack").glob("*.py"))
    names = set(re.findall(r"client\.([a-z]+_[A-Za-z_]+)\(", source))
    names |= set(re.findall(r'"(chat_[A-Za-z]+)"', source))
    methods = {name.replace("_", ".") for name in names}
    for helper, called in HELPERS.items():
        if helper in methods:
            methods = (methods - {helper}) | called
    return methods


def test_manifest_loads_and_covers_every_called_method() -> None:
    manifest = yaml.safe_load((REPO / "manifest" / "slack.yaml").read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    methods = called_methods()
    assert {"users.info", "conversations.info", "chat.postMessage", "chat.update"} <= methods
    streaming = {"chat.startStream", "chat.stopStream", "assistant.threads.setStatus"}
    assert streaming | {"assistant.threads.setSuggestedPrompts", "chat.delete"} <= methods
    for method in methods:
        assert method in METHOD_SCOPES, f"add {method} and its scopes to this test"
        for needed in METHOD_SCOPES[method]:
            assert not needed or needed <= scopes, (method, needed - scopes)
    assert "users:read.email" in scopes  # users.info only returns the email with it
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_mention", "message.im"} <= set(events)
    for event in events:
        needed = EVENT_SCOPES[event]
        assert needed is None or needed in scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # The assistant scope and event need the AI-app surface declared.
    assert "assistant_thread_started" in events and "assistant_view" in manifest["features"]
    assert manifest["features"]["assistant_view"]["assistant_description"].strip()
    assert manifest["settings"]["socket_mode_enabled"] is False
