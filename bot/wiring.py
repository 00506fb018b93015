"""Composition root: build the service's parts from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.cache_store import ChromaSqlCacheStore
from adapters.db.catalog import SqlCatalog
from adapters.db.directory import SqlDirectory
from adapters.db.engine import create_engine, upgrade
from adapters.db.memory import SqlConversationMemory
from adapters.db.reader import close_reader
from adapters.db.releases import SqlReleaseStore
from adapters.db.tickets import DbTicketQueue
from adapters.db.traces import BufferedTraceWriter
from adapters.db.writes import close_writes
from adapters.embeddings.known import KnownVectors
from adapters.embeddings.litellm_embedder import LiteLLMEmbedder
from adapters.embeddings.local import LocalMiniLMEmbedder
from adapters.llm import openai_wire
from adapters.observability.metrics import ServiceMetrics
from adapters.vectorstore.chroma import ChromaVectorIndex, open_client
from bot.handoff import HandoffParts, build_handoff
from bot.release_file import release_id, settings_release, with_release
from bot.settings import (
    ConfigError,
    PolicySettings,
    RetrievalSettings,
    Settings,
    SlackSettings,
    TeamsSettings,
)
from core.answering.config import AnswerConfig
from core.answering.gate import GateConfig
from core.answering.model import TierSpec
from core.answering.policy import (
    HUMAN_RULE,
    Pattern,
    PolicyConfig,
    TopicRule,
    compile_pattern,
)
from core.answering.service import AnswerService
from core.answering.tracing import FanOutSink, TraceSink
from core.cache import CacheConfig, SemanticCache
from core.conversation.leases import EventLeases, LeaseConfig
from core.conversation.outbound import Outbound, UnconfiguredPlatform
from core.conversation.ports import Surfaces
from core.conversation.queue import AnswerQueue, QueueConfig
from core.conversation.service import ConversationConfig, ConversationService
from core.ingest.service import IngestConfig, Ingestor
from core.ports import Embedder
from core.releases import ReleaseSwitch
from core.retrieval import RetrievalConfig, Retriever
from core.tickets import TicketProvider

if TYPE_CHECKING:  # the Slack and Teams adapters are imported only when configured
    from adapters.observability.otel import OtelTraceExporter
    from adapters.slack.app import SlackEndpoint
    from adapters.slack.oauth import InstallPages
    from adapters.slack.socket_mode import SocketModeTransport
    from adapters.teams.endpoint import TeamsEndpoint
    from adapters.teams.ports import Transport
    from adapters.teams.setup import TeamsSetup

DEMO_VECTORS = Path(__file__).resolve().parent / "demo" / "vectors.npz"
_INGEST_LOCK_ID = 0x616E73  # PostgreSQL advisory lock key for ingestion


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    catalog: SqlCatalog
    directory: SqlDirectory
    index: ChromaVectorIndex
    embedder: Embedder
    retriever: Retriever
    ingestor: Ingestor
    traces: BufferedTraceWriter
    answers: ReleaseSwitch  # the AnswerService of the release answering each question
    cache_store: ChromaSqlCacheStore
    tickets: DbTicketQueue  # the handoff outbox (every provider's tickets)
    handoff: HandoffParts
    releases: ReleaseAnswers
    leases: EventLeases  # event claims: this replica's, leased (core/conversation/leases.py)
    metrics: ServiceMetrics | None = None
    telemetry: OtelTraceExporter | None = None  # only with OTEL_EXPORTER_OTLP_ENDPOINT
    # The replica's answer slots, shared by every chat platform.
    answer_queue: AnswerQueue = field(default_factory=AnswerQueue)

    async def close(self) -> None:
        await openai_wire.release()
        await self.handoff.handoffs.system.close()
        await self.traces.close()
        if self.telemetry is not None:
            await asyncio.to_thread(self.telemetry.close)
        close_writes(self.engine)
        close_reader(self.engine)
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def ingest_lock(self) -> AsyncIterator[None]:
        """One ingestion at a time per data dir / database, across processes."""
        if self.engine.dialect.name == "postgresql":
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _INGEST_LOCK_ID})
                try:
                    yield
                finally:
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _INGEST_LOCK_ID}
                    )
            return
        with open(self.settings.data_dir / "ingest.lock", "w") as handle:
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def build_embedder(settings: Settings) -> Embedder:
    cfg = settings.embeddings
    if cfg.model is None:  # the demo corpus's passages are not encoded again (known.py)
        return KnownVectors(LocalMiniLMEmbedder(batch_size=cfg.batch_size), DEMO_VECTORS)
    if cfg.dimension is None:
        raise ConfigError(
            "invalid configuration: embeddings.dimension: required when embeddings.model is set"
        )
    return LiteLLMEmbedder(
        cfg.model,
        dimension=cfg.dimension,
        api_base=cfg.api_base,
        api_key=_reveal(cfg.api_key),
        batch_size=cfg.batch_size,
    )


async def build_services(
    settings: Settings,
    *,
    migrate: bool = True,
    reindex: bool = False,
    trace_sinks: Sequence[TraceSink] = (),
    answer_tickets: TicketProvider | None = None,
) -> Services:
    """Connect everything. Raises IndexMismatchError when the index needs re-indexing;
    `reindex` empties the index and the catalog instead, to rebuild them with this embedder.
    Each finished trace goes to the database, the metrics, the OTLP exporter when one is
    configured, and `trace_sinks`. `answer_tickets` replaces the ticket provider the answer
    flow hands off to (an evaluation run must not open real tickets)."""
    settings.prepare_data_dir()
    openai_wire.retain()  # the model calls' shared HTTP session, released by close()
    if migrate:
        await upgrade(settings.db_url)
    engine = create_engine(settings.db_url)
    client = await asyncio.to_thread(
        open_client,
        path=None if settings.chroma_url else settings.chroma_path,
        url=settings.chroma_url,
    )
    index = await asyncio.to_thread(ChromaVectorIndex, client, settings.chroma_collection)
    embedder = build_embedder(settings)
    catalog = SqlCatalog(engine)
    if reindex:
        await asyncio.to_thread(index.reset)
        await catalog.clear()
    await asyncio.to_thread(index.ensure_embedder, embedder.name, embedder.dimension)
    retriever = Retriever(index, catalog, embedder, retrieval_config(settings.retrieval))
    i = settings.ingest
    ingestor = Ingestor(
        catalog,
        index,
        embedder,
        IngestConfig(
            chunk_max_chars=i.chunk_max_chars,
            chunk_overlap_chars=i.chunk_overlap_chars,
            near_duplicate_similarity=i.near_duplicate_similarity,
            default_classification=i.default_classification,
        ),
    )
    traces = BufferedTraceWriter(engine, settings.data_dir / "traces-spill.jsonl")
    cache_store = await asyncio.to_thread(
        ChromaSqlCacheStore, client, f"{settings.chroma_collection}_cache", engine
    )
    memory = SqlConversationMemory(engine)
    handoff = build_handoff(settings, engine, memory, build_outbound(settings, engine), traces)
    metrics = (
        ServiceMetrics([tier.name for tier in settings.models.tiers])
        if settings.metrics.enabled
        else None
    )
    telemetry = _telemetry()
    sinks = [s for s in (traces, metrics, telemetry, *trace_sinks) if s is not None]
    releases = ReleaseAnswers(
        settings,
        SqlReleaseStore(engine),
        retriever,
        SqlDirectory(engine),
        FanOutSink(*sinks),
        answer_tickets or handoff.handoffs,
        memory,
        catalog.document_versions,
        cache_store,
        metrics,
    )
    answers = ReleaseSwitch(
        releases.store,
        releases.stored,
        releases.build(settings),
        refresh_s=settings.releases.refresh_s,
    )
    return Services(
        settings=settings,
        engine=engine,
        catalog=catalog,
        directory=SqlDirectory(engine),
        index=index,
        embedder=embedder,
        retriever=retriever,
        ingestor=ingestor,
        traces=traces,
        answers=answers,
        cache_store=cache_store,
        tickets=DbTicketQueue(engine),
        handoff=handoff,
        releases=releases,
        leases=event_leases(settings, engine),
        metrics=metrics,
        telemetry=telemetry,
        answer_queue=AnswerQueue(queue_config(settings), metrics),
    )


def queue_config(settings: Settings) -> QueueConfig:
    q = settings.answer_queue
    return QueueConfig(
        max_concurrent=settings.slack.max_concurrent_answers or q.max_concurrent,
        max_waiting=q.max_waiting,
        max_wait_s=q.max_wait_s,
    )


def event_leases(settings: Settings, engine: AsyncEngine) -> EventLeases:
    from adapters.db.conversations import SqlConversationStore

    e = settings.events
    return EventLeases(
        SqlConversationStore(engine),
        LeaseConfig(e.lease_s, e.sweep_s, e.max_attempts, e.database_wait_s),
    )


def retrieval_config(r: RetrievalSettings) -> RetrievalConfig:
    return RetrievalConfig(
        top_k=r.top_k,
        hybrid=r.hybrid,
        rrf_k=r.rrf_k,
        candidates=r.candidates,
        max_overfetch=r.max_overfetch,
        max_per_document=r.max_per_document,
    )


@dataclass
class ReleaseAnswers:
    """What every release's answer service shares (retrieval, directory, traces, tickets,
    memory, the cache's store), and how one is built for a release's settings."""

    settings: Settings
    store: SqlReleaseStore
    retriever: Retriever
    directory: Any
    traces: TraceSink
    tickets: TicketProvider
    memory: Any
    versions: Any
    cache_store: ChromaSqlCacheStore
    metrics: ServiceMetrics | None = None

    def build(
        self,
        settings: Settings,
        *,
        release: str | None = None,
        system_prompt: str | None = None,
        traces: TraceSink | None = None,
        tickets: TicketProvider | None = None,
        cache: bool = True,
    ) -> AnswerService:
        """The answer service for `settings` (a release's, see `with_release`); `release`
        is its id (default: computed from the settings' release sections). `traces`,
        `tickets` and `cache=False` are for evaluations and probes. `cache.enabled: false`
        in the configuration file turns the cache off whatever the release says (`eval`
        relies on it)."""
        config = answer_config(settings, release=release, system_prompt=system_prompt)
        if self.metrics is not None:
            self.metrics.add_tiers([tier.name for tier in config.tiers])
        c = settings.cache
        enabled = c.enabled and cache and self.settings.cache.enabled
        semantic = SemanticCache(
            self.cache_store,
            CacheConfig(enabled, c.similarity_threshold, c.ttl_s, c.candidates),
            config.release,
            {tier.name: tier.allowed_classifications for tier in config.tiers},
        )
        return AnswerService(
            self.retriever_for(settings),
            self.directory,
            _model_client(settings),
            traces or self.traces,
            config,
            cache=semantic,
            tickets=tickets or self.tickets,
            memory=self.memory,
            versions=self.versions,
        )

    def retriever_for(self, settings: Settings) -> Retriever:
        return self.retriever.configured(retrieval_config(settings.retrieval))

    async def resolve(self, release: str | None, **parts: Any) -> tuple[AnswerService, Retriever]:
        """A stored release's answer service and retriever (None: the configuration
        file's); `parts` as for `build`."""
        settings, prompt = self.settings, None
        if release is not None:
            found = await self.store.find(release)
            if found is None:
                raise LookupError(f"release {release} is not stored")
            settings, prompt = with_release(self.settings, found.content)
        answers = self.build(settings, release=release, system_prompt=prompt, **parts)
        return answers, self.retriever_for(settings)

    async def stored(self, release: str | None) -> AnswerService:
        return (await self.resolve(release))[0]


def otlp_endpoint() -> str | None:
    """Where spans go (the standard OpenTelemetry variables), or None: no tracing."""
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def _telemetry() -> OtelTraceExporter | None:
    """Spans over OTLP when an endpoint is set; otherwise the exporter is not even built."""
    if not otlp_endpoint():
        return None
    from adapters.observability.otel import OtelTraceExporter, tracer_provider_from_environment

    return OtelTraceExporter(tracer_provider_from_environment())


def answer_config(
    settings: Settings, *, release: str | None = None, system_prompt: str | None = None
) -> AnswerConfig:
    """The answer flow's settings. `release` is the release id recorded on traces and cache
    entries; without it, the id of the release the settings' sections describe. Secrets are
    not part of a release: rotating a key changes no answer."""
    m = settings.models
    tiers = tuple(
        TierSpec(
            **tier.model_dump(exclude={"api_key", "allowed_classifications"}),
            api_key=_reveal(tier.api_key),
            allowed_classifications=frozenset(tier.allowed_classifications),
        )
        for tier in m.tiers
    )
    p = settings.policy
    g = settings.gate
    return AnswerConfig(
        tiers=tiers,
        deadline_s=m.deadline_s,
        max_cost_per_request_usd=m.budget.max_cost_per_request_usd,
        require_citations=settings.policy.require_citations,
        max_question_chars=settings.policy.max_question_chars,
        top_k=settings.retrieval.top_k,
        breaker_failures=m.breaker.failure_threshold,
        breaker_cooldown_s=m.breaker.cooldown_s,
        redaction=settings.tracing.redaction,
        release=release or release_id(settings_release(settings)),
        **({"system_prompt": system_prompt} if system_prompt else {}),
        policy=policy_config(p),
        pii_redaction=p.pii_redaction,
        language=p.language,
        allow_tools=p.allow_tools,
        gate=GateConfig(g.min_score, g.confident_score, g.min_margin),
        memory_turns=settings.memory.turns,
        memory_max_age_s=settings.memory.max_age_s,
    )


def policy_config(p: PolicySettings) -> PolicyConfig:
    """Topic rules and the human-request rule (built-in, extended by the settings)."""

    def compiled(patterns: list[str]) -> tuple[Pattern, ...]:
        return tuple(compile_pattern(x) for x in patterns)

    topics = tuple(
        TopicRule(
            t.name,
            t.action,
            t.message,
            compiled(t.patterns),
            tuple(t.examples),
            compiled(t.allow_patterns),
            tuple(t.allow_examples),
            t.threshold,
        )
        for t in p.prohibited_topics
    )
    h = p.human_request
    human = (
        HUMAN_RULE.extended(
            compiled(h.patterns),
            h.examples,
            compiled(h.allow_patterns),
            h.allow_examples,
            h.threshold,
        )
        if h.enabled
        else None
    )
    return PolicyConfig(topics, human, p.example_threshold, tuple(p.question_languages))


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _model_client(settings: Settings):  # type: ignore[no-untyped-def]
    if not settings.models.tiers:
        from core.answering.model import NoModelClient

        return NoModelClient()
    from adapters.llm.litellm_client import LiteLLMClient  # imports litellm: only when needed

    return LiteLLMClient()


def slack_environment(cfg: SlackSettings) -> dict[str, str]:
    """The Slack credentials the settings read, under their environment variables' names."""
    values = {
        "SLACK_SIGNING_SECRET": _reveal(cfg.signing_secret),
        "SLACK_BOT_TOKEN": _reveal(cfg.bot_token),
        "SLACK_CLIENT_ID": cfg.client_id,
        "SLACK_CLIENT_SECRET": _reveal(cfg.client_secret),
        "SLACK_APP_TOKEN": _reveal(cfg.app_token),
    }
    return {name: value for name, value in values.items() if value}


@dataclass
class SlackParts:
    """What the environment turns on: the HTTP events endpoint, or a Socket Mode transport
    feeding the same endpoint; the OAuth install pages in multi-workspace mode. Each part
    that is off carries the one-line reason."""

    events: SlackEndpoint | None = None
    socket: SocketModeTransport | None = None
    install: InstallPages | None = None
    events_reason: str = ""
    install_reason: str = ""
    session: Any = None  # the Web API clients' aiohttp session (connections reused)
    endpoint: SlackEndpoint | None = None  # either transport's: re-dispatches taken-over events

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def build_slack(services: Services) -> SlackParts:
    """SLACK_BOT_TOKEN runs one workspace; SLACK_CLIENT_ID and SLACK_CLIENT_SECRET run every
    workspace and Enterprise Grid org that installs the app (OAuth, installations in the
    database). Events come over HTTP (SLACK_SIGNING_SECRET) or, with `slack.socket_mode`,
    over a WebSocket (SLACK_APP_TOKEN)."""
    from adapters.slack.credentials import slack_credentials

    cfg = services.settings.slack
    credentials = slack_credentials(slack_environment(cfg), socket_mode=cfg.socket_mode)
    if isinstance(credentials, str):
        return SlackParts(events_reason=credentials, install_reason=credentials)
    import aiohttp

    from adapters.db.conversations import SqlConversationStore
    from adapters.db.traces import most_asked_questions
    from adapters.slack.app import SlackEndpoint, bolt_app
    from adapters.slack.assistant import AssistantConfig, SuggestedPrompts
    from adapters.slack.bot import SlackBot, SlackConfig
    from adapters.slack.client import web_client
    from adapters.slack.logs import slack_library_logger
    from adapters.slack.oauth import (
        InstallPages,
        ManifestError,
        OAuthConfig,
        installations,
        manifest_bot_scopes,
    )
    from adapters.slack.socket_mode import SocketModeTransport
    from adapters.slack.store import SlackStore
    from adapters.slack.stream import StreamConfig

    logger = slack_library_logger(credentials.secrets)
    session = aiohttp.ClientSession()  # built on the running loop; closed with the app
    client = web_client(credentials.bot_token, cfg.api_base_url, logger, session=session)
    installs = None
    if credentials.multi_workspace:
        try:
            scopes = manifest_bot_scopes()
        except ManifestError as exc:
            reason = f"Slack is misconfigured: {exc}"
            return SlackParts(events_reason=reason, install_reason=reason, session=session)
        oauth = OAuthConfig(
            client_id=credentials.client_id or "",
            client_secret=credentials.client_secret or "",
            scopes=scopes,
            authorize_url=cfg.authorize_url,
            redirect_url=cfg.oauth_redirect_url,
            state_ttl_s=cfg.oauth_state_ttl_s,
        )
        installs = installations(oauth, services.engine, client, logger)
    store = SlackStore(services.engine)
    conversations = ConversationService(
        services.answers,
        services.directory,
        services.handoff.handoffs,
        SqlConversationStore(services.engine),
        ConversationConfig(
            audience_ttl_s=cfg.channel_cache_ttl_s,
            database_wait_s=services.settings.events.database_wait_s,
        ),
        services.answer_queue,
    )
    engine = services.engine
    bot = SlackBot(
        conversations,
        store,
        SlackConfig(
            user_cache_ttl_s=cfg.user_cache_ttl_s,
            post_interval_s=cfg.post_interval_s,
            thread_followups=cfg.thread_followups,
            streaming=StreamConfig(
                enabled=cfg.streaming,
                interval_s=cfg.stream_interval_s,
                max_appends=cfg.stream_max_appends,
                status=cfg.assistant.status,
                status_delay_s=cfg.assistant.status_delay_s,
            ),
        ),
        SuggestedPrompts(
            AssistantConfig(tuple(cfg.assistant.suggested_prompts), cfg.assistant.prompts_title),
            lambda limit: most_asked_questions(engine, limit),
        ),
    )
    secret = credentials.signing_secret
    app = bolt_app(bot, secret, client, installations=installs, logger=logger)
    endpoint = SlackEndpoint(
        app, secret, services.leases, _counting_duplicates(services.metrics, "slack")
    )
    parts = SlackParts(
        session=session,
        events=endpoint,
        endpoint=endpoint,
        install=InstallPages(app.oauth_flow) if app.oauth_flow else None,
        install_reason=(
            "Slack runs for one workspace (SLACK_BOT_TOKEN); installing into workspaces "
            "needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET instead"
        ),
    )
    if credentials.app_token:
        app_client = web_client(credentials.app_token, cfg.api_base_url, logger)
        parts.socket = SocketModeTransport(endpoint, credentials.app_token, app_client, logger)
        parts.events = None
        parts.events_reason = "Slack events arrive over Socket Mode; /slack/events is not used"
    return parts


def build_outbound(settings: Settings, engine: AsyncEngine) -> Outbound:
    """Posting into recorded conversations from outside a chat turn (`answerdesk say`,
    agents' replies and ticket news), with each platform's credentials from the
    environment."""
    from adapters.db.conversations import SqlConversationStore

    return Outbound(
        SqlConversationStore(engine),
        {
            "slack": _slack_surfaces(settings.slack, engine),
            "teams": _teams_surfaces(settings.teams, engine),
        },
    )


def _slack_surfaces(cfg: SlackSettings, engine: AsyncEngine) -> Surfaces:
    from adapters.slack.credentials import posting_credentials

    credentials = posting_credentials(slack_environment(cfg))
    if isinstance(credentials, str):
        return UnconfiguredPlatform(credentials)
    from adapters.slack.logs import slack_library_logger
    from adapters.slack.oauth import installation_store
    from adapters.slack.surface import SlackPoster, SlackSurfaces

    logger = slack_library_logger(credentials.secrets)
    installs = None
    if credentials.multi_workspace:
        installs = installation_store(credentials.client_id or "", engine, logger)
    # Retried once: an operator waits on `say`, and deliveries that must not be lost are
    # retried by whoever asked (one poster per process, so one pace per channel here).
    return SlackSurfaces(
        SlackPoster(cfg.post_interval_s, attempts=2),
        cfg.api_base_url,
        logger,
        bot_token=credentials.bot_token,
        installations=installs,
    )


def _counting_duplicates(metrics: ServiceMetrics | None, platform: str) -> Any:
    """Counts the deliveries an event claim refuses (retries, other replicas)."""
    if metrics is None:
        return None
    return lambda: metrics.dedupe_hit(platform)


def teams_setup(cfg: TeamsSettings) -> TeamsSetup | str:
    """The Teams setup the settings describe, or the one-line reason Teams cannot run."""
    from adapters.teams.setup import teams_setup as setup

    return setup(
        app_id=cfg.app_id,
        app_password=_reveal(cfg.app_password),
        app_type=cfg.app_type,
        tenant_id=cfg.app_tenant_id,
        openid_metadata_url=cfg.openid_metadata_url,
        token_url=cfg.token_url,
        allowed_tenants=cfg.allowed_tenants,
    )


@dataclass
class TeamsParts:
    """`POST /api/messages` when MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD are set; else
    the one-line reason it answers 503."""

    endpoint: TeamsEndpoint | None = None
    reason: str = ""


def build_teams(services: Services) -> TeamsParts:
    """Teams over the Bot Framework, answering through the conversation layer."""
    setup = teams_setup(services.settings.teams)
    if isinstance(setup, str):
        return TeamsParts(reason=setup)
    from adapters.db.conversations import SqlConversationStore
    from adapters.teams.bot import TeamsBot, TeamsConfig
    from adapters.teams.endpoint import TeamsEndpoint
    from adapters.teams.identity import Rosters
    from adapters.teams.package import sample_questions
    from adapters.teams.store import TeamsStore

    cfg = services.settings.teams
    transport = _teams_transport(setup)
    conversations = SqlConversationStore(services.engine)
    bot = TeamsBot(
        transport,
        TeamsStore(services.engine),
        ConversationService(
            services.answers,
            services.directory,
            services.handoff.handoffs,
            conversations,
            ConversationConfig(
                audience_ttl_s=cfg.member_cache_ttl_s,
                database_wait_s=services.settings.events.database_wait_s,
            ),
            services.answer_queue,
        ),
        Rosters(cfg.member_cache_ttl_s),
        TeamsConfig(reply_window_s=cfg.reply_window_s, sample_questions=tuple(sample_questions())),
    )
    return TeamsParts(
        endpoint=TeamsEndpoint(
            transport,
            bot,
            services.leases,
            setup.allowed_tenants,
            _counting_duplicates(services.metrics, "teams"),
        )
    )


def _teams_transport(setup: TeamsSetup) -> Transport:
    """The Bot Framework SDK behind the Teams adapter's own small interface."""
    from adapters.teams.sdk import BotFrameworkConfig, BotFrameworkTransport

    return BotFrameworkTransport(
        BotFrameworkConfig(
            app_id=setup.app_id,
            app_password=setup.app_password,
            openid_metadata_url=setup.openid_metadata_url,
            token_url=setup.token_url,
        )
    )


def _teams_surfaces(cfg: TeamsSettings, engine: AsyncEngine) -> Surfaces:
    """Posting into Teams conversations outside a turn: proactive messages with the stored
    conversation references and the app's credentials (MICROSOFT_APP_ID/PASSWORD)."""
    setup = teams_setup(cfg)
    if isinstance(setup, str):
        return UnconfiguredPlatform(setup)
    from adapters.teams.store import TeamsStore
    from adapters.teams.surface import TeamsSurfaces

    return TeamsSurfaces(lambda: _teams_transport(setup), TeamsStore(engine))
