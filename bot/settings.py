"""Settings: one YAML file (`ANSWERDESK_CONFIG`) plus `ANSWERDESK_*` environment overrides.

Nested keys use `__` (`ANSWERDESK_RETRIEVAL__TOP_K=8`). Secrets never live in the file: a
setting that needs one names the environment variable that holds it (`api_key_env`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "ANSWERDESK_CONFIG"
_SECRET_WORDS = ("password", "secret", "token", "api_key")


class ConfigError(ValueError):
    """Configuration that cannot be used; the message is one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingSettings(_Section):
    model: str | None = None  # a litellm embedding model; None → local MiniLM
    api_base: str | None = None
    api_key_env: str | None = None
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
    budget: BudgetSettings = BudgetSettings()
    breaker: BreakerSettings = BreakerSettings()

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


class SlackSettings(_Section):
    """Credentials come only from the environment: SLACK_SIGNING_SECRET with SLACK_BOT_TOKEN
    (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (multi-workspace OAuth)."""

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
    embeddings: EmbeddingSettings = EmbeddingSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    models: ModelsSettings = ModelsSettings()
    policy: PolicySettings = PolicySettings()
    cache: CacheSettings = CacheSettings()
    gate: GateSettings = GateSettings()
    memory: MemorySettings = MemorySettings()
    tickets: TicketSettings = TicketSettings()
    slack: SlackSettings = SlackSettings()
    tracing: TracingSettings = TracingSettings()
    logging: LoggingSettings = LoggingSettings()
    server: ServerSettings = ServerSettings()

    @model_validator(mode="after")
    def _check_urls(self) -> Settings:
        if self.database_url and "://" not in self.database_url:
            raise ValueError("database_url must be a SQLAlchemy URL such as postgresql+asyncpg://…")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            raise ValueError("chroma_url must start with http:// or https://")
        return self

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
        _reject_secrets(data, prefix="")
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


def _reject_secrets(data: Any, prefix: str) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}{key}"
            lowered = str(key).lower()
            if any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith("_env"):
                raise ConfigError(
                    f"{name}: secrets are read only from the environment; "
                    f"name the variable instead (for example {key}_env)"
                )
            _reject_secrets(value, prefix=f"{name}.")
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _reject_secrets(item, prefix=f"{prefix}{index}.")


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
    """Load and validate settings; any problem becomes one ConfigError line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "config"
        raise ConfigError(f"invalid configuration: {key}: {error['msg']}") from None
