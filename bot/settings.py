"""Settings: one YAML file (`ANSWERDESK_CONFIG`) plus `ANSWERDESK_*` environment overrides.

Nested keys use `__` (`ANSWERDESK_RETRIEVAL__TOP_K=8`). Secrets never live in the file. The
schema says which fields are secrets (`SecretStr` with a `FromEnv` or `SecretNamedBy`
marker): only those keys are refused in the file, each refusal naming the environment
variable to use, and their values are read from the environment and masked wherever
settings are shown.
"""

from __future__ import annotations

import os
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.durations import parse_duration
from core.answering.policy import DEFAULT_EXAMPLE_THRESHOLD
from core.answering.wordforms import DEFAULT_LANGUAGES
from core.classification import DEFAULT_LEVEL, LEVELS

CONFIG_ENV = "ANSWERDESK_CONFIG"


class ConfigError(ValueError):
    """Configuration that cannot be used. The message is one line naming the key (the
    first problem); `problems` holds one line per problem found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True, slots=True)
class FromEnv:
    """Schema marker: the field's value comes from this environment variable. A `secret`
    field may not be written in the file."""

    variable: str
    secret: bool = True


@dataclass(frozen=True, slots=True)
class SecretNamedBy:
    """Schema marker: a secret read from the environment variable that the sibling field
    `field` names (`api_key_env: OPENAI_API_KEY`); never written in the file."""

    field: str
    example: str


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _read_environment(self) -> _Section:
        for name, info in type(self).model_fields.items():
            if getattr(self, name) is not None:
                continue
            for marker in info.metadata:
                value = None
                if isinstance(marker, FromEnv):
                    value = os.environ.get(marker.variable) or None
                    if value is not None and marker.secret:
                        value = SecretStr(value)
                elif isinstance(marker, SecretNamedBy):
                    variable = getattr(self, marker.field)
                    found = os.environ.get(variable) if variable else None
                    value = SecretStr(found) if found else None
                if value is not None:
                    object.__setattr__(self, name, value)
        return self


Secret = SecretStr | None
Classification = Literal["public", "internal", "confidential", "restricted"]  # core LEVELS


class EmbeddingSettings(_Section):
    model: str | None = None  # a litellm embedding model; None → local MiniLM
    api_base: str | None = None
    api_key_env: str | None = None
    api_key: Annotated[Secret, SecretNamedBy("api_key_env", "OPENAI_API_KEY")] = None
    dimension: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=64, gt=0, le=2048)


class IngestSettings(_Section):
    chunk_max_chars: int = Field(default=900, ge=200, le=4000)
    chunk_overlap_chars: int = Field(default=150, ge=0, le=1000)
    near_duplicate_similarity: float = Field(default=0.95, gt=0, le=1)
    # For documents no front matter or ACL file rule classifies.
    default_classification: Classification = DEFAULT_LEVEL


class RetrievalSettings(_Section):
    top_k: int = Field(default=5, gt=0, le=100)
    hybrid: bool = True
    rrf_k: int = Field(default=60, gt=0)
    candidates: int = Field(default=20, ge=5, le=1000)
    max_overfetch: int = Field(default=400, ge=10, le=10000)
    max_per_document: int = Field(default=2, ge=0, le=100)  # 0: no limit


class TierSettings(_Section):
    name: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1)  # any litellm model string
    api_base: str | None = None
    api_key_env: str | None = None
    api_key: Annotated[Secret, SecretNamedBy("api_key_env", "OPENAI_API_KEY")] = None
    timeout_s: float = Field(default=8.0, gt=0, le=300)
    max_output_tokens: int = Field(default=500, gt=0, le=32000)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    # The document classifications this tier may receive (data boundary; default: all).
    allowed_classifications: list[Classification] = Field(
        default_factory=lambda: list(LEVELS), min_length=1
    )


class BudgetSettings(_Section):
    max_cost_per_request_usd: float | None = Field(default=None, gt=0)


class BreakerSettings(_Section):
    failure_threshold: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)


class ModelsSettings(_Section):
    tiers: list[TierSettings] = Field(default_factory=list)  # cheapest first
    deadline_s: float = Field(default=20.0, gt=0, le=600)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)

    @model_validator(mode="after")
    def _unique_names(self) -> ModelsSettings:
        names = [tier.name for tier in self.tiers]
        if len(names) != len(set(names)):
            raise ValueError("tier names must be unique")
        return self


class RuleSettings(_Section):
    """What a question is matched with (README "Governance"): `patterns` (plain words and
    phrases match every word form; regex syntax is a regex), `examples` (questions on the
    topic, matched by embedding similarity ≥ `threshold`), and the near-misses the rule lets
    through: `allow_patterns`, `allow_examples`."""

    patterns: list[str] = Field(default_factory=list)
    examples: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    allow_patterns: list[str] = Field(default_factory=list)
    allow_examples: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    threshold: float | None = Field(default=None, gt=0, le=1)  # None: policy.example_threshold

    @model_validator(mode="after")
    def _patterns_compile(self) -> RuleSettings:
        import re

        from core.answering.policy import compile_pattern

        for pattern in (*self.patterns, *self.allow_patterns):
            try:
                compile_pattern(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regex: {exc}") from None
        return self


class TopicSettings(RuleSettings):
    name: str = Field(min_length=1)
    action: Literal["refuse", "handoff"] = "refuse"
    message: str = Field(min_length=1)

    @model_validator(mode="after")
    def _matches_something(self) -> TopicSettings:
        if not self.patterns and not self.examples:
            raise ValueError(f"topic rule {self.name!r} needs patterns or examples")
        return self


class HumanRequestSettings(RuleSettings):
    """The built-in "talk to a human" rule, extended by these patterns and examples."""

    enabled: bool = True


class PolicySettings(_Section):
    require_citations: bool = True
    max_question_chars: int = Field(default=4000, ge=10, le=100_000)
    prohibited_topics: list[TopicSettings] = Field(default_factory=list)
    human_request: HumanRequestSettings = Field(default_factory=HumanRequestSettings)
    # Chosen by measurement: benchmarks/governance.py over tests/data/governance.jsonl.
    example_threshold: float = Field(default=DEFAULT_EXAMPLE_THRESHOLD, gt=0, le=1)
    # The languages questions are written in: word forms are matched with their Snowball
    # stemmers, and the language detector chooses among these.
    question_languages: list[str] = Field(default_factory=lambda: list(DEFAULT_LANGUAGES))
    language: str = Field(default="auto", pattern=r"^(auto|[a-z]{2,3}(-[A-Za-z]{2,4})?)$")
    pii_redaction: bool = True
    allow_tools: bool = False

    @model_validator(mode="after")
    def _languages_supported(self) -> PolicySettings:
        from core.answering.wordforms import supported_languages

        known = supported_languages()
        unknown = [code for code in self.question_languages if code not in known]
        if unknown or not self.question_languages:
            raise ValueError(
                f"question_languages must be among {', '.join(known)} "
                f"(got {', '.join(unknown) or 'none'})"
            )
        names = [t.name for t in self.prohibited_topics]
        if len(names) != len(set(names)) or "asks_for_human" in names:
            raise ValueError("topic rule names must be unique and not 'asks_for_human'")
        return self


class CacheSettings(_Section):
    enabled: bool = True
    similarity_threshold: float = Field(default=0.80, gt=0, le=1)  # measured: README
    ttl_s: float = Field(default=7 * 24 * 3600, gt=0)
    candidates: int = Field(default=5, ge=1, le=50)


class GateSettings(_Section):
    min_score: float = Field(default=0.25, ge=0, le=1)
    confident_score: float = Field(default=0.45, ge=0, le=1)
    min_margin: float = Field(default=0.02, ge=0, le=1)


class MemorySettings(_Section):
    turns: int = Field(default=6, ge=0, le=50)
    max_age_s: float = Field(default=3600, gt=0)


class TicketSettings(_Section):
    # The admin pages' public URL: built-in tickets link to <url_base>/tickets/AD-<n>, and
    # every ticket to its request's trace at <url_base>/traces/<request id>.
    url_base: str | None = None


class JiraSettings(_Section):
    base_url: str | None = None  # https://acme.atlassian.net
    project_key: str | None = None
    issue_type: str = "Task"
    email_env: str = "JIRA_EMAIL"
    email: Annotated[Secret, SecretNamedBy("email_env", "JIRA_EMAIL")] = None
    token_env: str = "JIRA_API_TOKEN"
    token: Annotated[Secret, SecretNamedBy("token_env", "JIRA_API_TOKEN")] = None
    requester_field: str | None = None  # a custom field for the asker's email (customfield_…)
    labels: list[str] = Field(default_factory=lambda: ["answerdesk"])
    # The admin webhook's secret: Jira signs with it (X-Hub-Signature), we verify.
    webhook_secret_env: str = "JIRA_WEBHOOK_SECRET"
    webhook_secret: Annotated[
        Secret, SecretNamedBy("webhook_secret_env", "JIRA_WEBHOOK_SECRET")
    ] = None


class ZendeskSettings(_Section):
    base_url: str | None = None  # https://acme.zendesk.com
    email_env: str = "ZENDESK_EMAIL"
    email: Annotated[Secret, SecretNamedBy("email_env", "ZENDESK_EMAIL")] = None
    token_env: str = "ZENDESK_API_TOKEN"
    token: Annotated[Secret, SecretNamedBy("token_env", "ZENDESK_API_TOKEN")] = None
    tags: list[str] = Field(default_factory=lambda: ["answerdesk"])
    webhook_secret_env: str = "ZENDESK_WEBHOOK_SECRET"  # the webhook's signing secret
    webhook_secret: Annotated[
        Secret, SecretNamedBy("webhook_secret_env", "ZENDESK_WEBHOOK_SECRET")
    ] = None


class ServiceNowSettings(_Section):
    base_url: str | None = None  # https://acme.service-now.com
    user_env: str = "SNOW_USER"
    user: Annotated[Secret, SecretNamedBy("user_env", "SNOW_USER")] = None
    password_env: str = "SNOW_PASSWORD"
    password: Annotated[Secret, SecretNamedBy("password_env", "SNOW_PASSWORD")] = None
    # OAuth client credentials instead of basic auth, when both variables are named and set.
    client_id_env: str | None = None
    client_id: Annotated[Secret, SecretNamedBy("client_id_env", "SNOW_CLIENT_ID")] = None
    client_secret_env: str | None = None
    client_secret: Annotated[Secret, SecretNamedBy("client_secret_env", "SNOW_CLIENT_SECRET")] = (
        None
    )
    assignment_group: str | None = None  # a group's sys_id or name
    webhook_secret_env: str = "SNOW_WEBHOOK_SECRET"  # the business rule's bearer token
    webhook_secret: Annotated[
        Secret, SecretNamedBy("webhook_secret_env", "SNOW_WEBHOOK_SECRET")
    ] = None


class WebhookSettings(_Section):
    url: str | None = None
    secret_env: str = "ANSWERDESK_WEBHOOK_SECRET"  # signs our tickets and their loop-back
    secret: Annotated[Secret, SecretNamedBy("secret_env", "ANSWERDESK_WEBHOOK_SECRET")] = None


class DeliverySettings(_Section):
    """The outbox worker: how long the user waits for a key, then how deliveries retry."""

    timeout_s: float = Field(default=10.0, gt=0, le=120)  # one HTTP request
    inline_timeout_s: float = Field(default=5.0, ge=0, le=60)  # the attempt the user waits for
    backoff_s: float = Field(default=2.0, gt=0)  # first retry; doubles with each attempt
    max_backoff_s: float = Field(default=600.0, gt=0)
    failing_after: int = Field(default=5, ge=1)  # attempts before a delivery counts as failing
    poll_s: float = Field(default=2.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)  # a claimed row's lease (a crashed worker's ends)
    batch: int = Field(default=20, ge=1, le=500)


_PROVIDER_NEEDS = {
    "jira": ("base_url", "project_key"),
    "zendesk": ("base_url",),
    "servicenow": ("base_url",),
    "webhook": ("url",),
}


class HandoffSettings(_Section):
    provider: Literal["builtin", "jira", "zendesk", "servicenow", "webhook"] = "builtin"
    jira: JiraSettings = Field(default_factory=JiraSettings)
    zendesk: ZendeskSettings = Field(default_factory=ZendeskSettings)
    servicenow: ServiceNowSettings = Field(default_factory=ServiceNowSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    announce_channel: str | None = None  # a Slack channel id for new-ticket announcements
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _provider_configured(self) -> HandoffSettings:
        section = getattr(self, self.provider, None)
        for name in _PROVIDER_NEEDS.get(self.provider, ()):
            value = getattr(section, name)
            if not value:
                raise ValueError(
                    f"handoff.{self.provider}.{name} is required when handoff.provider is "
                    f"{self.provider}"
                )
            if name.endswith("url") and not value.startswith(("http://", "https://")):
                raise ValueError(f"handoff.{self.provider}.{name} must start with https://")
        return self


class TracingSettings(_Section):
    redaction: Literal["none", "pii", "all"] = "pii"  # message text in traces and logs


class SlackAssistantSettings(_Section):
    """Slack's AI-app surfaces (manifest `assistant_view`): the thread's status while an
    answer is prepared, and suggested prompts when someone opens the assistant."""

    status: bool = True  # status steps as assistant.threads.setStatus
    status_delay_s: float = Field(default=0.5, ge=0, le=10)  # faster answers show none
    # Up to 4; empty = the questions most asked in public channels (traces).
    suggested_prompts: list[str] = Field(default_factory=list, max_length=4)
    prompts_title: str = "Questions people ask"


class SlackSettings(_Section):
    """Credentials come only from the environment: SLACK_SIGNING_SECRET with SLACK_BOT_TOKEN
    (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (multi-workspace OAuth);
    SLACK_APP_TOKEN for Socket Mode."""

    signing_secret: Annotated[Secret, FromEnv("SLACK_SIGNING_SECRET")] = None
    bot_token: Annotated[Secret, FromEnv("SLACK_BOT_TOKEN")] = None
    client_id: Annotated[str | None, FromEnv("SLACK_CLIENT_ID", secret=False)] = None
    client_secret: Annotated[Secret, FromEnv("SLACK_CLIENT_SECRET")] = None
    app_token: Annotated[Secret, FromEnv("SLACK_APP_TOKEN")] = None

    api_base_url: str = "https://slack.com/api/"  # every Web API client uses it
    # Multi-workspace OAuth: where /slack/install sends the installer's browser, and the
    # public URL of /slack/oauth_redirect (one of the app's Redirect URLs; unset: Slack uses
    # the first one configured). Scopes are the manifest's bot scopes.
    authorize_url: str = "https://slack.com/oauth/v2/authorize"
    oauth_redirect_url: str | None = None
    oauth_state_ttl_s: int = Field(default=600, ge=60, le=3600)
    thread_followups: bool = True  # answer replies in threads the bot answered
    user_cache_ttl_s: float = Field(default=3600, gt=0)
    channel_cache_ttl_s: float = Field(default=300, gt=0)
    post_interval_s: float = Field(default=1.0, ge=0)
    # The older name of answer_queue.max_concurrent; when set, it is used instead.
    max_concurrent_answers: int | None = Field(default=None, ge=1, le=256)
    # Events over a WebSocket the service opens (needs SLACK_APP_TOKEN); /slack/events off.
    socket_mode: bool = False
    # Answers streamed into the thread (chat.startStream/appendStream/stopStream): the first
    # words at once, then at most one append per interval and max_appends per answer.
    streaming: bool = True
    stream_interval_s: float = Field(default=1.0, ge=0.2, le=30)
    stream_max_appends: int = Field(default=10, ge=0, le=100)
    assistant: SlackAssistantSettings = Field(default_factory=SlackAssistantSettings)


class AnswerQueueSettings(_Section):
    """The replica's answer slots, shared by Slack and Teams: answers at once, and how many
    questions may wait for a slot and for how long before the asker is told the service is
    busy (README "Busy replicas")."""

    max_concurrent: int = Field(default=8, ge=1, le=256)
    max_waiting: int = Field(default=200, ge=0, le=100_000)
    max_wait_s: float = Field(default=60, gt=0, le=3600)


class SloSettings(_Section):
    file: Path | None = None  # the service agreement (slo.yaml): `answerdesk slo report`


class MetricsSettings(_Section):
    """`GET /metrics` (Prometheus). With ANSWERDESK_METRICS_TOKEN set, or a console login
    configured, a scrape needs `Authorization: Bearer <token>` or a console session."""

    enabled: bool = True
    token: Annotated[Secret, FromEnv("ANSWERDESK_METRICS_TOKEN")] = None


_SCRYPT_HASH = re.compile(r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+")


class AdminSettings(_Section):
    """The console at /admin. Its login comes only from the environment:
    ANSWERDESK_ADMIN_USER with ANSWERDESK_ADMIN_PASSWORD (hashed at start; only the hash is
    stored) or ANSWERDESK_ADMIN_PASSWORD_HASH (`answerdesk admin hash-password`)."""

    enabled: bool = True
    user: Annotated[str | None, FromEnv("ANSWERDESK_ADMIN_USER", secret=False)] = None
    password: Annotated[Secret, FromEnv("ANSWERDESK_ADMIN_PASSWORD")] = None
    password_hash: Annotated[Secret, FromEnv("ANSWERDESK_ADMIN_PASSWORD_HASH")] = None
    # Signs session cookies; unset, a key is generated once and kept in the database.
    session_secret: Annotated[Secret, FromEnv("ANSWERDESK_SESSION_SECRET")] = None
    session_ttl_s: int = Field(default=8 * 3600, ge=300, le=7 * 86400)
    login_max_failures: int = Field(default=5, ge=1, le=1000)  # per name and per client
    login_window_s: int = Field(default=900, ge=60, le=86400)
    secure_cookie: bool = False  # true behind HTTPS: the cookie is never sent in clear

    @model_validator(mode="after")
    def _user_name(self) -> AdminSettings:
        if self.user is not None and not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", self.user):
            raise ValueError("admin.user (ANSWERDESK_ADMIN_USER): 1-64 letters, digits, . _ @ -")
        given = self.password_hash.get_secret_value() if self.password_hash else None
        if given is not None and not _SCRYPT_HASH.fullmatch(given):
            raise ValueError(
                "admin.password_hash (ANSWERDESK_ADMIN_PASSWORD_HASH) is not a hash from "
                "`answerdesk admin hash-password`"
            )
        if self.user and self.password is None and self.password_hash is None:
            raise ValueError(
                "admin.user (ANSWERDESK_ADMIN_USER) needs ANSWERDESK_ADMIN_PASSWORD "
                "or ANSWERDESK_ADMIN_PASSWORD_HASH"
            )
        return self


class EvalSettings(_Section):
    """`answerdesk eval`: an optional model judge (any litellm model) that grades
    groundedness and relevance; never part of the regression gate."""

    judge_model: str | None = None
    judge_api_base: str | None = None
    judge_api_key_env: str | None = None
    judge_api_key: Annotated[Secret, SecretNamedBy("judge_api_key_env", "OPENAI_API_KEY")] = None
    judge_timeout_s: float = Field(default=30.0, gt=0, le=600)


class TeamsSettings(_Section):
    """Bot Framework credentials come only from the environment: MICROSOFT_APP_ID and
    MICROSOFT_APP_PASSWORD (the Entra app registration), MICROSOFT_APP_TYPE (MultiTenant,
    the default, or SingleTenant) and MICROSOFT_APP_TENANT_ID (SingleTenant; also the tenant
    allowed when `allowed_tenants` is empty). Only the password is a secret."""

    app_id: Annotated[str | None, FromEnv("MICROSOFT_APP_ID", secret=False)] = None
    app_password: Annotated[Secret, FromEnv("MICROSOFT_APP_PASSWORD")] = None
    app_type: Annotated[str | None, FromEnv("MICROSOFT_APP_TYPE", secret=False)] = None
    app_tenant_id: Annotated[str | None, FromEnv("MICROSOFT_APP_TENANT_ID", secret=False)] = None

    # Where the signing keys of inbound activity tokens are published (OpenID metadata).
    openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    # Outbound client-credentials token endpoint; None = derived from the tenant.
    token_url: str | None = None
    allowed_tenants: list[str] = Field(default_factory=list)  # empty = the app's own tenant
    reply_window_s: float = Field(default=12.0, gt=0, le=60)  # past this: proactive delivery
    member_cache_ttl_s: float = Field(default=300, gt=0)

    @model_validator(mode="after")
    def _urls(self) -> TeamsSettings:
        for name in ("openid_metadata_url", "token_url"):
            value = getattr(self, name)
            if value is not None and not value.startswith(("http://", "https://")):
                raise ValueError(f"{name} must start with http:// or https://")
        if self.app_type is not None and self.app_type.lower() not in (
            "multitenant",
            "singletenant",
        ):
            raise ValueError("app_type (MICROSOFT_APP_TYPE) must be MultiTenant or SingleTenant")
        return self


class ReleaseSettings(_Section):
    """Releases (README "Launch checklist and releases"): how often each replica re-reads
    which release is active, and the evaluation library the activation gate and the
    pre-launch checklist run (None: the demo library, bot/demo/eval/library.yaml)."""

    refresh_s: float = Field(default=2.0, gt=0, le=300)
    gate_library: Path | None = None
    gate_concurrency: int = Field(default=4, ge=1, le=64)


class RetentionSettings(_Section):
    """How long traces, memory and cache entries are kept: the default age of `maintenance
    purge`, and what the pre-launch checklist holds the stored traces to."""

    max_age: str | None = None  # 30d, 12w

    @model_validator(mode="after")
    def _duration(self) -> RetentionSettings:
        if self.max_age is not None:
            parse_duration(self.max_age)
        return self


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


_KIB = 1024
_MIB = 1024 * _KIB


class BodyLimitSettings(_Section):
    """The largest request body each route accepts, in bytes. A larger one is refused with
    413 and a JSON body before the service reads it further or parses anything."""

    slack: int = Field(default=_MIB, ge=_KIB, le=64 * _MIB)  # /slack/events (+ interactivity)
    teams: int = Field(default=_MIB, ge=_KIB, le=64 * _MIB)  # /api/messages
    ticket_hooks: int = Field(default=_MIB, ge=_KIB, le=64 * _MIB)  # /hooks/tickets/{provider}
    console: int = Field(default=64 * _KIB, ge=_KIB, le=64 * _MIB)  # /admin forms
    admin_run: int = Field(default=16 * _MIB, ge=_KIB, le=256 * _MIB)  # /admin/run (CLI)
    other: int = Field(default=16 * _KIB, ge=_KIB, le=64 * _MIB)  # the rest: no body


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    body_limits: BodyLimitSettings = Field(default_factory=BodyLimitSettings)


class EventSettings(_Section):
    """Events answered exactly once across replicas (README "Scaling out"): the replica
    answering an event holds its claim for `lease_s`, renewed while it works; when a replica
    dies mid-answer, another takes the event over once the lease has run out (each replica
    looks every `sweep_s`), at most `max_attempts` times per event. What people do while
    the database is down (a restart: events, votes, requests for a person, answers'
    records) waits up to `database_wait_s` for it and is stored when it is back."""

    lease_s: float = Field(default=30.0, ge=1, le=3600)
    sweep_s: float = Field(default=5.0, gt=0, le=600)
    max_attempts: int = Field(default=3, ge=1, le=20)
    database_wait_s: float = Field(default=60.0, ge=0, le=3600)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ANSWERDESK_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    data_dir: Path = Path("./var")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "ANSWERDESK_DATABASE_URL", "database_url"),
    )
    chroma_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CHROMA_URL", "ANSWERDESK_CHROMA_URL", "chroma_url"),
    )
    chroma_collection: str = "answerdesk_chunks"
    # Authenticates `POST /admin/run` (CLI hand-off); generated per start when unset.
    admin_token: Annotated[Secret, FromEnv("ANSWERDESK_ADMIN_TOKEN")] = None
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    tickets: TicketSettings = Field(default_factory=TicketSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    answer_queue: AnswerQueueSettings = Field(default_factory=AnswerQueueSettings)
    teams: TeamsSettings = Field(default_factory=TeamsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    slo: SloSettings = Field(default_factory=SloSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    releases: ReleaseSettings = Field(default_factory=ReleaseSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="after")
    def _check_urls(self) -> Settings:
        if self.database_url and "://" not in self.database_url:
            raise ValueError("database_url must be a SQLAlchemy URL such as postgresql+asyncpg://…")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            raise ValueError("chroma_url must start with http:// or https://")
        return self

    @field_serializer("database_url", "chroma_url")
    def _mask_password(self, url: str | None) -> str | None:
        """A URL's password is a secret: shown masked like the others."""
        return _mask_url_password(url) if url else url

    @property
    def db_url(self) -> str:
        if self.database_url:
            return _async_driver(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'answerdesk.db').resolve()}"

    def prepare_data_dir(self) -> None:
        """The embedded database lives in the data dir: make sure it exists."""
        if self.database_url is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            return {}
        data = _read_yaml(Path(path))
        _refuse_secrets(data, Settings, prefix="")
        return data


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{CONFIG_ENV}: config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{CONFIG_ENV}: cannot read {path}: {reason}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_ENV}: {path} must contain a mapping at the top level")
    odd = next((key for key in data if not isinstance(key, str)), None)
    if odd is not None:  # `5: x` or `? [a]`: YAML allows them, settings are named
        raise ConfigError(f"{CONFIG_ENV}: {path}: {odd!r} is not a setting name")
    return data


def _refuse_secrets(data: Any, model: type[BaseModel], prefix: str) -> None:
    """Refuse the fields the schema declares secret; say which variable to use instead.
    Other unknown keys are left to validation (reported as not permitted)."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        info = model.model_fields.get(str(key))
        if info is None:
            continue
        name = f"{prefix}{key}"
        for marker in info.metadata:
            if isinstance(marker, FromEnv) and marker.secret:
                raise ConfigError(
                    f"{name}: secrets are read only from the environment; "
                    f"set {marker.variable} instead"
                )
            if isinstance(marker, SecretNamedBy):
                raise ConfigError(
                    f"{name}: secrets are read only from the environment; name the variable "
                    f"that holds it instead ({prefix}{marker.field}: {marker.example})"
                )
        section, many = _section_of(info.annotation)
        if section is None:
            continue
        if many and isinstance(value, list):
            for index, item in enumerate(value):
                _refuse_secrets(item, section, prefix=f"{name}.{index}.")
        elif not many:
            _refuse_secrets(value, section, prefix=f"{name}.")


def _section_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the settings section a field holds, whether it is a list of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, True
    return None, False


def secret_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """Every secret the schema declares, as (key, where its value comes from)."""
    out = []
    for key, info in model.model_fields.items():
        for marker in info.metadata:
            if isinstance(marker, FromEnv) and marker.secret:
                out.append((f"{prefix}{key}", marker.variable))
            elif isinstance(marker, SecretNamedBy):
                out.append((f"{prefix}{key}", f"the variable named by {marker.field}"))
        section, many = _section_of(info.annotation)
        if section is not None:
            out.extend(secret_fields(section, f"{prefix}{key}.{'N.' if many else ''}"))
    return out


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:**********@{host}"


def _async_driver(url: str) -> str:
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings; problems become a ConfigError (one line each)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            key = ".".join(str(part) for part in error["loc"]) or "config"
            problems.append(f"invalid configuration: {key}: {error['msg']}")
        raise ConfigError(problems[0], problems) from None
