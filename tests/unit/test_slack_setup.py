"""Which Slack setup the environment describes, the manifest's scopes, and the masking of
secrets in what slack_bolt and slack_sdk log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.slack.credentials import SlackCredentials, slack_credentials
from adapters.slack.logs import LOGGER_NAME, slack_library_logger
from adapters.slack.oauth import ManifestError, manifest_bot_scopes

SIGNING = {"SLACK_SIGNING_SECRET": "ss"}


def test_one_workspace_and_many() -> None:
    one = slack_credentials({**SIGNING, "SLACK_BOT_TOKEN": "xoxb-1"})
    assert isinstance(one, SlackCredentials) and not one.multi_workspace
    many = slack_credentials({**SIGNING, "SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "cs"})
    assert isinstance(many, SlackCredentials) and many.multi_workspace
    assert set(many.secrets) == {"ss", "cs"}
    assert "cs" not in repr(many) and "ss" not in repr(many)


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        (SIGNING, "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is missing"),
        ({**SIGNING, "SLACK_CLIENT_ID": "1.2"}, "SLACK_CLIENT_SECRET is missing"),
        ({**SIGNING, "SLACK_CLIENT_SECRET": "cs"}, "SLACK_CLIENT_ID is missing"),
        ({**SIGNING, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CLIENT_ID": "1.2"}, "both set"),
        ({**SIGNING, "SLACK_BOT_TOKEN": "", "SLACK_CLIENT_ID": ""}, "not configured"),
    ],
)
def test_every_problem_is_one_line_without_secrets(environ: dict[str, str], says: str) -> None:
    reason = slack_credentials(environ)
    assert isinstance(reason, str) and says in reason
    assert "\n" not in reason
    assert all(value not in reason for value in ("xoxb-1", "cs") if value in environ.values())


def test_socket_mode_needs_an_app_token_and_no_signing_secret() -> None:
    environ = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    creds = slack_credentials(environ, socket_mode=True)
    assert isinstance(creds, SlackCredentials) and creds.signing_secret is None
    assert creds.app_token == "xapp-1" and "xapp-1" in creds.secrets
    assert "xapp-1" not in repr(creds)
    reason = slack_credentials({"SLACK_BOT_TOKEN": "xoxb-1"}, socket_mode=True)
    assert isinstance(reason, str) and "SLACK_APP_TOKEN" in reason
    over_http = slack_credentials({**SIGNING, **environ})
    assert isinstance(over_http, SlackCredentials) and over_http.app_token is None


def test_scopes_come_from_the_manifest(tmp_path: Path) -> None:
    scopes = manifest_bot_scopes()
    assert "chat:write" in scopes and "users:read.email" in scopes
    broken = tmp_path / "slack.yaml"
    broken.write_text("oauth_config: {}\n")
    with pytest.raises(ManifestError, match="bot scopes"):
        manifest_bot_scopes(broken)
    with pytest.raises(ManifestError):
        manifest_bot_scopes(tmp_path / "missing.yaml")


def test_library_logger_masks_secrets_tokens_and_codes(caplog: pytest.LogCaptureFixture) -> None:
    logger = slack_library_logger(["cs-unit-secret"])
    assert logger.name == LOGGER_NAME and logger.level == logging.INFO
    assert slack_library_logger([]).filters == logger.filters  # one filter, not one per call
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    logger.debug("Received body: {'access_token': 'xoxb-1-2-abc', 'ok': True}")
    logger.warning("Failed to fetch oauth.v2.access result with code: %s - error: %s", "c-42", "x")
    logger.info("Handling an OAuth callback (request: {'code': ['c-43'], 'state': ['s']})")
    try:
        raise RuntimeError("boom with cs-unit-secret inside")
    except RuntimeError:
        logger.exception("listener failed")
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert len(caplog.records) == 4
    for secret in ("xoxb-1-2-abc", "c-42", "c-43", "cs-unit-secret"):
        assert secret not in text
    assert text.count("(redacted)") >= 4 and "RuntimeError" in text
