"""Which Teams setup the settings describe, or the one-line reason Teams cannot run.
No SDK import: `config check` uses it without loading botbuilder."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_TOKEN_HOST = "https://login.microsoftonline.com"


@dataclass(frozen=True, slots=True)
class TeamsSetup:
    app_id: str
    app_password: str = field(repr=False)
    app_type: str  # MultiTenant | SingleTenant
    openid_metadata_url: str
    token_url: str
    allowed_tenants: frozenset[str]


def teams_setup(
    *,
    app_id: str | None,
    app_password: str | None,
    app_type: str | None,
    tenant_id: str | None,
    openid_metadata_url: str,
    token_url: str | None,
    allowed_tenants: list[str],
) -> TeamsSetup | str:
    missing = [
        name
        for name, value in (("MICROSOFT_APP_ID", app_id), ("MICROSOFT_APP_PASSWORD", app_password))
        if not value
    ]
    if missing:
        return f"Teams is not configured: set {' and '.join(missing)}"
    kind = "SingleTenant" if (app_type or "").lower() == "singletenant" else "MultiTenant"
    tenant = (tenant_id or "").strip().lower()
    if kind == "SingleTenant" and not tenant:
        return "Teams is misconfigured: a SingleTenant app needs MICROSOFT_APP_TENANT_ID"
    allowed = frozenset(t.strip().lower() for t in allowed_tenants if t.strip()) or (
        frozenset({tenant}) if tenant else frozenset()
    )
    if not allowed:
        return (
            "Teams is misconfigured: no tenant may use the bot; set teams.allowed_tenants "
            "or MICROSOFT_APP_TENANT_ID"
        )
    # Entra's token endpoint: the app's tenant for a single-tenant bot, else Bot
    # Framework's own tenant (botframework.com).
    authority = tenant if kind == "SingleTenant" else "botframework.com"
    return TeamsSetup(
        app_id=str(app_id),
        app_password=str(app_password),
        app_type=kind,
        openid_metadata_url=openid_metadata_url,
        token_url=token_url or f"{DEFAULT_TOKEN_HOST}/{authority}/oauth2/v2.0/token",
        allowed_tenants=allowed,
    )
