"""Settings: one YAML file (`ANSWERDESK_CONFIG`) plus `ANSWERDESK_*` environment overrides.

Nested keys use `__` (`ANSWERDESK_RETRIEVAL__TOP_K=8`). Secrets never live in the file. The
schema says which fields are secrets (`SecretStr` with a `FromEnv` or `SecretNamedBy`
marker): only those keys are refused in the file, each refusal naming the environment
variable to use, and their values are read from the environment and masked wherever
settings are shown.
"""

from __future__ import annotations

import os
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


class RetrievalSettings(_Section):
    top_k: int = Field(default=5, gt=0, le=100)
    hybrid: bool = True
    rrf_k: int = Field(default=60, gt=0)
    candidates: int = Field(default=20, ge=5, le=1000)
    max_overfetch: int = Field(default=400, ge=10, le=10000)


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


class TopicSettings(_Section):
    name: str = Field(min_length=1)
    patterns: list[str] = Field(min_length=1)  # regexes, or plain words and phrases
    action: Literal["refuse", "handoff"] = "refuse"
    message: str = Field(min_length=1)

    @model_validator(mode="after")
    def _patterns_compile(self) -> TopicSettings:
        import re

        from core.answering.policy import compile_pattern

        for pattern in self.patterns:
            try:
                compile_pattern(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regex: {exc}") from None
        return self


class PolicySettings(_Section):
    require_citations: bool = True
    max_question_chars: int = Field(default=4000, ge=10, le=100_000)
    prohibited_topics: list[TopicSettings] = Field(default_factory=list)
    language: str = Field(default="auto", pattern=r"^(auto|[a-z]{2,3}(-[A-Za-z]{2,4})?)$")
    pii_redaction: bool = True
    allow_tools: bool = False


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
    url_base: str | None = None  # where ticket links point (the admin pages)


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
    max_concurrent_answers: int = Field(default=8, ge=1, le=256)
    # Events over a WebSocket the service opens (needs SLACK_APP_TOKEN); /slack/events off.
    socket_mode: bool = False
    # Answers streamed into the thread (chat.startStream/appendStream/stopStream): the first
    # words at once, then at most one append per interval and max_appends per answer.
    streaming: bool = True
    stream_interval_s: float = Field(default=1.0, ge=0.2, le=30)
    stream_max_appends: int = Field(default=10, ge=0, le=100)
    assistant: SlackAssistantSettings = Field(default_factory=SlackAssistantSettings)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


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
    slack: SlackSettings = Field(default_factory=SlackSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
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
