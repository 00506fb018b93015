"""The embedded setup with `answerdesk serve` running: the service owns the index, so the
activation gate and the checklist's probes run inside it (handed over `POST /admin/run`),
and the service answers with the activated release without a restart."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.support.cli import REPO, run
from tests.support.processes import http, serve

pytestmark = pytest.mark.slow

GATE_LIBRARY = REPO / "tests" / "data" / "eval" / "demo_gate_library.yaml"
KAYAK = "Can I borrow a kayak from the gear room?"
NO_KAYAKS = (
    "policy:\n  prohibited_topics:\n    - {name: kayaks, message: Ask the outdoor team., "
    "patterns: [kayak]}\n"
)


def test_the_gate_and_the_probe_run_inside_the_service(
    demo_settings: Settings, tmp_path: Path
) -> None:
    env = {
        "ANSWERDESK_DATA_DIR": str(demo_settings.data_dir),
        "ANSWERDESK_RELEASES__GATE_LIBRARY": str(GATE_LIBRARY),
        "ANSWERDESK_RELEASES__REFRESH_S": "1",
        "ANSWERDESK_ADMIN_TOKEN": "embedded-token",
    }
    (tmp_path / "kayaks.yaml").write_text(NO_KAYAKS)
    created = run(
        tmp_path,
        "release",
        "create",
        "--from",
        str(tmp_path / "kayaks.yaml"),
        "--note",
        "kayaks",
        "--json",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    release = json.loads(created.stdout)["id"]
    ask = {"op": "ask", "params": {"questions": [{"text": KAYAK, "email": "a@b.example"}]}}
    with serve(env) as url:
        assert http(f"{url}/admin/run", ask, "embedded-token")[1]["result"][0]["mode"] != "refused"
        done = run(tmp_path, "release", "activate", release, "--json", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["gate"]["passed"]
        deadline = time.monotonic() + 30
        while http(f"{url}/admin/run", ask, "embedded-token")[1]["result"][0]["mode"] != "refused":
            assert time.monotonic() < deadline, "the service did not follow the activation"
            time.sleep(0.3)
        checked = run(tmp_path, "preflight", "--json", env=env)
        assert checked.returncode == 1, checked.stderr  # not launch-ready: no agreement…
        items = {i["name"]: i for i in json.loads(checked.stdout)["items"]}
        assert items["acl_self_test"]["passed"], items["acl_self_test"]
        assert items["rollback"]["passed"], items["rollback"]
        # The library ran in the service; without a baseline it cannot pass.
        reason = items["evaluation"]["reason"]
        assert reason == "demo-gate (10 cases): no baseline to hold the thresholds to"
