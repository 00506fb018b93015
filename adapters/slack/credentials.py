"""Which Slack setup the environment describes: one workspace (a bot token) or many
(an OAuth client that workspaces and Enterprise Grid orgs install). Never both, and every
problem is one line naming the variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_HOW = (
    "set SLACK_SIGNING_SECRET with SLACK_BOT_TOKEN (one workspace) or with SLACK_CLIENT_ID "
    "and SLACK_CLIENT_SECRET (multi-workspace OAuth)"
)

_BOTH = (
    "Slack is misconfigured: SLACK_BOT_TOKEN (one workspace) and SLACK_CLIENT_ID/"
    "SLACK_CLIENT_SECRET (multi-workspace OAuth) are both set; keep one"
)


@dataclass(frozen=True, slots=True)
class SlackCredentials:
    signing_secret: str | None = field(repr=False)
    bot_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)  # Socket Mode

    @property
    def multi_workspace(self) -> bool:
        return self.bot_token is None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line."""
        values = (self.signing_secret, self.bot_token, self.client_secret, self.app_token)
        return tuple(s for s in values if s)


def slack_credentials(
    environ: Mapping[str, str], *, socket_mode: bool = False
) -> SlackCredentials | str:
    """The credentials, or the one-line reason Slack cannot run. Over Socket Mode events
    arrive on a WebSocket opened with SLACK_APP_TOKEN, so no signing secret is needed."""
    token = environ.get("SLACK_BOT_TOKEN") or None
    client_id = environ.get("SLACK_CLIENT_ID") or None
    client_secret = environ.get("SLACK_CLIENT_SECRET") or None
    signing_secret = environ.get("SLACK_SIGNING_SECRET") or None
    if token is None and client_id is None and client_secret is None:
        return f"Slack is not configured: {_HOW}"
    if token is not None and (client_id is not None or client_secret is not None):
        return _BOTH
    if token is None and (client_id is None or client_secret is None):
        missing = "SLACK_CLIENT_ID" if client_id is None else "SLACK_CLIENT_SECRET"
        return f"Slack is not configured: {missing} is missing (multi-workspace OAuth needs both)"
    app_token = environ.get("SLACK_APP_TOKEN") or None
    if socket_mode and app_token is None:
        return "Slack is not configured: slack.socket_mode is on but SLACK_APP_TOKEN is not set"
    if signing_secret is None and not socket_mode:
        return f"Slack is not configured: SLACK_SIGNING_SECRET is missing; {_HOW}"
    return SlackCredentials(
        signing_secret, token, client_id, client_secret, app_token if socket_mode else None
    )


def posting_credentials(environ: Mapping[str, str]) -> SlackCredentials | str:
    """What posting outside an event needs (`answerdesk say`): the bot token (one
    workspace), or the OAuth client id whose stored installations hold the tokens; no
    signing secret. Else the one-line reason."""
    token = environ.get("SLACK_BOT_TOKEN") or None
    client_id = environ.get("SLACK_CLIENT_ID") or None
    if token is not None and (client_id is not None or environ.get("SLACK_CLIENT_SECRET")):
        return _BOTH
    if token is None and client_id is None:
        return (
            "Slack is not configured: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID "
            "(multi-workspace OAuth: the installations' tokens) to post into Slack"
        )
    return SlackCredentials(None, token, client_id)
