"""The pre-launch reachability check of each ticket system (`probe`), against the doubles
that speak their wire formats: it passes with the right credentials, fails with wrong ones
or when the system is down, and creates no ticket. (The checklist's `tickets` item runs it;
tests/integration/test_preflight.py covers that path through the CLI with Jira.)"""

from __future__ import annotations

import pytest

from bot.handoff import ticket_system
from bot.settings import HandoffSettings
from core.handoff.types import DeliveryError
from tests.support.model_server import unused_port
from tests.support.ticket_systems import (
    JiraDouble,
    ServiceNowDouble,
    WebhookReceiver,
    ZendeskDouble,
)


async def probe(settings: HandoffSettings) -> str:
    system = ticket_system(settings, None)
    try:
        return await system.probe()
    finally:
        await system.close()


async def test_jira_and_zendesk(monkeypatch: pytest.MonkeyPatch) -> None:
    with JiraDouble() as jira, ZendeskDouble() as zendesk:
        monkeypatch.setenv("JIRA_EMAIL", jira.email)
        monkeypatch.setenv("JIRA_API_TOKEN", jira.token)
        monkeypatch.setenv("ZENDESK_EMAIL", zendesk.email)
        monkeypatch.setenv("ZENDESK_API_TOKEN", zendesk.token)
        jira_cfg = {"base_url": jira.url, "project_key": "HELP"}
        good_jira = HandoffSettings(provider="jira", jira=jira_cfg)
        good_zendesk = HandoffSettings(provider="zendesk", zendesk={"base_url": zendesk.url})
        assert (await probe(good_jira)).startswith("Jira at")
        assert (await probe(good_zendesk)).startswith("Zendesk at")
        monkeypatch.setenv("JIRA_API_TOKEN", "wrong")
        monkeypatch.setenv("ZENDESK_API_TOKEN", "wrong")
        wrong_jira = HandoffSettings(provider="jira", jira=jira_cfg)
        with pytest.raises(DeliveryError, match="401"):
            await probe(wrong_jira)
        with pytest.raises(DeliveryError, match="401"):
            await probe(HandoffSettings(provider="zendesk", zendesk={"base_url": zendesk.url}))
        assert jira.created == [] and zendesk.created == []


async def test_servicenow_basic_and_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    with ServiceNowDouble() as snow:
        monkeypatch.setenv("SNOW_USER", snow.user)
        monkeypatch.setenv("SNOW_PASSWORD", snow.password)
        monkeypatch.setenv("SNOW_CLIENT_ID", snow.client_id)
        monkeypatch.setenv("SNOW_CLIENT_SECRET", snow.client_secret)
        basic = HandoffSettings(provider="servicenow", servicenow={"base_url": snow.url})
        oauth = HandoffSettings(
            provider="servicenow",
            servicenow={
                "base_url": snow.url,
                "client_id_env": "SNOW_CLIENT_ID",
                "client_secret_env": "SNOW_CLIENT_SECRET",
            },
        )
        assert "ServiceNow" in await probe(basic)
        assert "ServiceNow" in await probe(oauth)
        assert snow.tokens  # the OAuth probe took a token first
        monkeypatch.setenv("SNOW_PASSWORD", "wrong")
        with pytest.raises(DeliveryError, match="401"):
            await probe(HandoffSettings(provider="servicenow", servicenow={"base_url": snow.url}))
        assert snow.created == []


async def test_webhook_ping_and_an_unreachable_system(monkeypatch: pytest.MonkeyPatch) -> None:
    with WebhookReceiver(secret="hook-secret") as receiver:
        monkeypatch.setenv("ANSWERDESK_WEBHOOK_SECRET", "hook-secret")
        url = {"url": f"{receiver.url}/tickets"}
        assert "signed ping" in await probe(HandoffSettings(provider="webhook", webhook=url))
        assert receiver.created == []  # a ping is no ticket
        monkeypatch.setenv("ANSWERDESK_WEBHOOK_SECRET", "not-the-receivers")
        with pytest.raises(DeliveryError, match="401"):
            await probe(HandoffSettings(provider="webhook", webhook=url))
    down = HandoffSettings(
        provider="webhook", webhook={"url": f"http://127.0.0.1:{unused_port()}/tickets"}
    )
    with pytest.raises(DeliveryError):
        await probe(down)
    assert (await probe(HandoffSettings())).startswith("the built-in queue")
