"""Shared fixtures. Nothing here may reach the network."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
for _name in list(os.environ):
    if _name.startswith("ANSWERDESK_") and _name != "ANSWERDESK_TEST_POSTGRES_URL":
        del os.environ[_name]
os.environ.pop("DATABASE_URL", None)
os.environ.pop("CHROMA_URL", None)

import uuid  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from bot.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ZAVA = REPO.parent / "shared" / "corpora" / "zava"
DEMO = REPO / "bot" / "demo"
POSTGRES_URL = os.environ.get("ANSWERDESK_TEST_POSTGRES_URL")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator:
    from bot.wiring import build_services

    built = await build_services(settings)
    yield built
    await built.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("ANSWERDESK_TEST_POSTGRES_URL is not set: PostgreSQL tests need it")
    import asyncio

    import asyncpg

    base = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"answerdesk_test_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    head, _, _ = base.rpartition("/")
    yield f"postgresql+asyncpg://{head.split('://', 1)[1]}/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus and directory, ingested once per test session (real model)."""
    import asyncio

    from bot.wiring import build_services
    from core.acl import load_policy
    from core.directory import load_directory_file

    data_dir = tmp_path_factory.mktemp("demo") / "var"

    async def build() -> None:
        services = await build_services(Settings(data_dir=data_dir))
        try:
            await services.directory.import_entries(
                load_directory_file(DEMO / "directory.yaml"), replace=False
            )
            report = await services.ingestor.ingest(
                [DEMO / "corpus"], load_policy(DEMO / "acl.yaml")
            )
            assert not report.failed
        finally:
            await services.close()

    asyncio.run(build())
    return data_dir


@pytest.fixture
def demo_settings(demo_data_dir: Path, tmp_path: Path) -> Settings:
    """A private copy of the ingested demo data dir for one test."""
    import shutil

    target = tmp_path / "var"
    shutil.copytree(demo_data_dir, target)
    return Settings(data_dir=target)
