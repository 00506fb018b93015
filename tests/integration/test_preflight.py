"""`answerdesk preflight` through the command line, against real doubles of everything
outside the machine: a model server (tier probe and evaluation), a Slack Web API (auth.test),
a Bot Framework token endpoint, Jira, an OTLP collector. A launch-ready setup passes every
item (and the console shows the run); each breakage fails its own item: an unapproved
service agreement, an ACL rule broken so the probe leaks, no previous release, an
unreachable ticket system, a tier that times out. No run leaves anything of its probe
behind, not even one killed halfway (the next start sweeps it)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.settings import Settings
from tests.conftest import DEMO
from tests.support.botframework import BotFrameworkDouble
from tests.support.cli import REPO
from tests.support.console import login
from tests.support.model_server import ModelServer, unused_port
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import serve
from tests.support.service import running
from tests.support.slack_api import SlackApiDouble
from tests.support.ticket_systems import JiraDouble

pytestmark = pytest.mark.slow

GATE_LIBRARY = REPO / "tests" / "data" / "eval" / "demo_gate_library.yaml"
ITEMS = {
    "service_agreement",
    "cost",
    "acl_self_test",
    "evaluation",
    "tracing",
    "metrics",
    "log_redaction",
    "retention",
    "rollback",
    "slack",
    "teams",
    "tickets",
    "models",
}
APP_ID, TENANT = "6f1c2d3e-0000-4000-8000-00000000abcd", "72f988bf-0000-4000-8000-000000000001"
SLO = {
    "approved_by": "Dana Whitcombe (VP Customer Operations)",
    "approved_on": "2026-11-30",
    "objectives": {
        "answer_latency": {"p95_s": 8, "owner": "platform-team"},
        "availability": {"min": 0.995, "owner": "platform-team"},
        "cost_per_request_mean": {"max_usd": 0.01, "owner": "finance"},
        "monthly_budget": {"usd": 300, "owner": "finance", "expected_requests": 20000},
    },
}


@dataclass
class Ready:
    """A launch-ready setup: its data dir (copied per test), configuration and doubles."""

    data_dir: Path
    files: Path
    env: dict[str, str]
    models: ModelServer
    otlp: OtlpReceiver


def models_section(server: ModelServer) -> dict:
    return {
        "tiers": [
            {
                "name": "fast",
                "model": "openai/fast",
                "api_base": server.url,
                "api_key_env": "ANSWERDESK_TEST_MODEL_KEY",
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "timeout_s": 3,
            }
        ],
        "budget": {"max_cost_per_request_usd": 0.05},
    }


def cli(env: dict[str, str], *args: str, patch: str = "") -> subprocess.CompletedProcess[str]:
    """The command line; `patch` runs first in the process (a deliberate fault)."""
    code = f"{patch}\nfrom bot.cli import main\nmain()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


def preflight(env: dict[str, str], patch: str = "") -> tuple[int, dict[str, dict]]:
    done = cli(env, "preflight", "--json", "--as", "dana", patch=patch)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = json.loads(done.stdout)
    items = {i["name"]: i for i in report["items"]}
    assert set(items) == ITEMS
    for found in items.values():  # one line each, and what to do when it fails
        assert found["reason"] and "\n" not in found["reason"]
        assert found["passed"] or found["action"]
    assert report["passed"] == (done.returncode == 0)
    return done.returncode, items


def failing(items: dict[str, dict]) -> set[str]:
    return {name for name, found in items.items() if not found["passed"]}


def leftovers(data_dir: Path) -> dict[str, int]:
    """Everything of a probe that could remain: documents, passages, cache rows, ACL sets."""
    with sqlite3.connect(data_dir / "answerdesk.db") as db:

        def count(sql: str) -> int:
            return int(db.execute(sql).fetchone()[0])

        return {
            "documents": count("SELECT count(*) FROM documents WHERE id LIKE '__preflight__/%'"),
            "passages": count(
                "SELECT count(*) FROM passages WHERE text LIKE '%Halvorsen%' "
                "OR text LIKE '%night auditor%'"
            ),
            "cache": count("SELECT count(*) FROM cache_entries WHERE release LIKE 'preflight-%'"),
            "acl_sets": count(
                "SELECT count(*) FROM acl_sets WHERE principals LIKE '%answerdesk-preflight-%'"
            ),
        }


def files(data_dir: Path) -> set[str]:
    """The embedded index's files (the probe's collections live in memory, never here)."""
    return {str(p.relative_to(data_dir)) for p in (data_dir / "chroma").rglob("*")}


@pytest.fixture(scope="module")
def ready(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ready]:
    root = tmp_path_factory.mktemp("launch")
    data_dir = root / "var"
    shutil.copytree(demo_data_dir, data_dir)
    with (
        ModelServer() as models,
        SlackApiDouble(bot_token="xoxb-launch") as slack,
        BotFrameworkDouble(APP_ID, "teams-secret") as teams,
        JiraDouble() as jira,
        OtlpReceiver() as otlp,
    ):
        (root / "slo.yaml").write_text(yaml.safe_dump(SLO))
        config = {
            "data_dir": str(data_dir),
            "models": models_section(models),
            "slo": {"file": str(root / "slo.yaml")},
            "retention": {"max_age": "30d"},
            "releases": {"gate_library": str(root / "library.yaml")},
            "handoff": {
                "provider": "jira",
                "jira": {"base_url": jira.url, "project_key": "HELP"},
            },
            "slack": {"api_base_url": slack.url},
            "teams": {"token_url": teams.token_url},
        }
        (root / "answerdesk.yaml").write_text(yaml.safe_dump(config))
        env = {
            "ANSWERDESK_CONFIG": str(root / "answerdesk.yaml"),
            "ANSWERDESK_TEST_MODEL_KEY": "sk-test",
            "ANSWERDESK_METRICS_TOKEN": "scrape-token",
            "SLACK_BOT_TOKEN": "xoxb-launch",
            "SLACK_SIGNING_SECRET": "slack-signing",
            "MICROSOFT_APP_ID": APP_ID,
            "MICROSOFT_APP_PASSWORD": "teams-secret",
            "MICROSOFT_APP_TYPE": "SingleTenant",
            "MICROSOFT_APP_TENANT_ID": TENANT,
            "JIRA_EMAIL": jira.email,
            "JIRA_API_TOKEN": jira.token,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
        }
        # A release to launch with, activated through the gate: the configuration's own
        # settings become the release a rollback returns to.
        release = {"models": models_section(models), "policy": {"require_citations": True}}
        release["policy"]["prohibited_topics"] = [
            {
                "name": "kayaks",
                "message": "Kayak questions go to the outdoor team.",
                "patterns": ["kayak"],
            }
        ]
        (root / "release.yaml").write_text(yaml.safe_dump(release))
        shutil.copy(GATE_LIBRARY, root / "library.yaml")
        library = yaml.safe_load(GATE_LIBRARY.read_text())
        library["acl"] = str(DEMO / "acl.yaml")
        (root / "library.yaml").write_text(yaml.safe_dump(library, sort_keys=False))
        created = cli(
            env,
            "release",
            "create",
            "--from",
            str(root / "release.yaml"),
            "--note",
            "launch candidate",
            "--json",
        )
        assert created.returncode == 0, created.stderr
        release_id = json.loads(created.stdout)["id"]
        activated = cli(env, "release", "activate", release_id, "--as", "dana")
        assert activated.returncode == 0, activated.stdout + activated.stderr
        # The library's baseline: what the launch release scores (an approved setup).
        scored = cli(env, "eval", str(root / "library.yaml"), "--report", str(root / "baseline"))
        assert scored.returncode == 0, scored.stdout + scored.stderr
        library["baseline"] = str(root / "baseline" / "summary.json")
        (root / "library.yaml").write_text(yaml.safe_dump(library, sort_keys=False))
        yield Ready(data_dir, root, env, models, otlp)


def copy_of(ready: Ready, tmp_path: Path) -> dict[str, str]:
    """A private copy of the ready data dir, and the environment pointing at it."""
    data_dir = tmp_path / "var"
    shutil.copytree(ready.data_dir, data_dir)
    return {**ready.env, "ANSWERDESK_DATA_DIR": str(data_dir)}


def test_a_launch_ready_setup_passes_and_the_console_shows_it(
    ready: Ready, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = copy_of(ready, tmp_path)
    data_dir = Path(env["ANSWERDESK_DATA_DIR"])
    before = files(data_dir)
    code, items = preflight(env)
    assert code == 0, {n: i["reason"] for n, i in items.items() if not i["passed"]}
    assert "0 leaks" in items["evaluation"]["reason"]
    assert "requests a month" in items["cost"]["reason"]
    assert "auth.test ok" in items["slack"]["reason"]
    assert items["tickets"]["reason"].startswith("Jira at")
    assert leftovers(data_dir) == {"documents": 0, "passages": 0, "cache": 0, "acl_sets": 0}
    assert files(data_dir) == before

    async def page() -> str:
        monkeypatch.setenv("ANSWERDESK_ADMIN_USER", "dana")
        monkeypatch.setenv("ANSWERDESK_ADMIN_PASSWORD", "launch day password")
        settings = Settings(data_dir=data_dir)
        async with (
            running(settings) as (url, _),
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session,
        ):
            await login(session, url, "dana", "launch day password")
            async with session.get(f"{url}/admin/launch") as response:
                assert response.status == 200
                return await response.text()

    import asyncio

    html = asyncio.run(page())
    assert 'id="preflight-status">passed<' in html
    assert html.count('<tr class="" id="item-') == len(ITEMS)
    assert "a rollback returns to" in html


BREAKAGES = {
    # name: (what to change, the item that must fail, items allowed to fail with it, reason)
    "unapproved agreement": ("slo", "service_agreement", {"cost"}, "approved_by"),
    "ACL rule broken": ("acl", "acl_self_test", set(), "LEAK"),
    "audience check broken": ("audience", "acl_self_test", {"evaluation"}, "channel answer"),
    "no previous release": ("rollback", "rollback", set(), "nothing to roll back to"),
    "ticket system unreachable": ("jira", "tickets", set(), "jira cannot take tickets"),
    "a tier times out": ("hang", "models", {"evaluation", "cost"}, "timeout"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_each_breakage_fails_its_own_item(ready: Ready, tmp_path: Path, breakage: str) -> None:
    change, item, companions, needle = BREAKAGES[breakage]
    env = copy_of(ready, tmp_path)
    data_dir = Path(env["ANSWERDESK_DATA_DIR"])
    patch = ""
    if change == "slo":
        unapproved = {k: v for k, v in SLO.items() if k not in ("approved_by", "approved_on")}
        (tmp_path / "slo.yaml").write_text(yaml.safe_dump(unapproved))
        env["ANSWERDESK_SLO__FILE"] = str(tmp_path / "slo.yaml")
    elif change == "acl":
        # The rule restricting the probe documents to their group grants everyone instead.
        patch = (
            "import core.acl\n"
            "core.acl.AclPolicy.acl_for = lambda self, relpath: frozenset({'public'})"
        )
    elif change == "audience":
        # A channel answer checked against the asker alone, not every reader.
        patch = (
            "import core.principals as p\n"
            "p.Access.allows = lambda self, acl: p.may_read(self.readers[0], frozenset(acl))"
        )
    elif change == "rollback":
        rolled = cli(env, "release", "rollback", "--as", "dana")
        assert rolled.returncode == 0, rolled.stderr
    elif change == "jira":
        env["ANSWERDESK_HANDOFF__JIRA__BASE_URL"] = f"http://127.0.0.1:{unused_port()}"
    elif change == "hang":
        ready.models.set_default("fast", "hang:20")
    try:
        code, items = preflight(env, patch)
    finally:
        ready.models.set_default("fast", "answer")
    assert code == 1
    assert item in failing(items) <= {item, *companions}, {
        n: i["reason"] for n, i in items.items() if not i["passed"]
    }
    assert needle in items[item]["reason"], items[item]["reason"]
    assert leftovers(data_dir) == {"documents": 0, "passages": 0, "cache": 0, "acl_sets": 0}


def test_a_killed_run_is_swept_by_the_next_service_start(ready: Ready, tmp_path: Path) -> None:
    env = copy_of(ready, tmp_path)
    data_dir = Path(env["ANSWERDESK_DATA_DIR"])
    # Killed outright once the probe documents are in: no `finally` runs.
    kill = "import os, bot.acl_probe as p\np._answer_service = lambda *a, **k: os._exit(3)"
    done = cli(env, "preflight", "--json", patch=kill)
    assert done.returncode == 3, done.stderr
    left = leftovers(data_dir)
    assert left["documents"] == 2 and left["passages"] == 2 and left["acl_sets"] == 1
    with serve({**env, "ANSWERDESK_ADMIN_TOKEN": "t"}):
        pass  # the service sweeps at start, before it listens; the checklist does too
    assert leftovers(data_dir) == {"documents": 0, "passages": 0, "cache": 0, "acl_sets": 0}
