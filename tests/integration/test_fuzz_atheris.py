"""Coverage-guided fuzzing with atheris (libFuzzer) of the parsers behind every edge — Slack's
signature check and body parsing, the Teams activity shape check and readers, the ticket
systems' loop-back verifiers and parsers, and the CLI's file loaders — in one subprocess
(tests/support/atheris_targets.py), seeded with real examples of each format. A parser
that raises anything but its documented refusal is a crash: libFuzzer exits non-zero and
names the input. Deterministic: a fixed seed and a fixed number of runs."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.botframework import member, message
from tests.support.cli import REPO
from tests.support.slack_api import app_mention, block_action, event_payload
from tests.support.ticket_systems import jira_comment, zendesk_comment

pytestmark = pytest.mark.fuzz

TARGETS = ("slack", "teams", "tickets", "files")  # the order `every` dispatches in
PROVIDERS = sorted(["jira", "zendesk", "servicenow", "webhook"])
KINDS = ("acl.yaml", "people.yaml", "people.csv", "library.yaml", "library.jsonl", "config.yaml")
RUNS = 10_000


def _seeds() -> list[bytes]:
    slack = [
        b"\x00"
        + json.dumps(
            event_payload(
                app_mention("<@UBOT> hi", user="U1", channel="C1", ts="1.2"), event_id="Ev1"
            )
        ).encode(),
        b"\x01"
        + block_action("answerdesk_vote_up", "r1", user="U1", channel="C1", message_ts="1.2"),
    ]
    activity = message(
        "<at>Answerdesk</at> hello",
        service_url="https://smba.example/teams/",
        conversation_id="a:1chat",
        conversation_type="personal",
        user=member("29:u", "a4e2c9f1-0d5b-4c87-8e3a-6f1b2d9c0e58", None, "U"),
        tenant_id="t1",
        bot_id="28:bot",
        mention=True,
    )
    feedback = {
        **activity,
        "type": "invoke",
        "name": "message/submitAction",
        "replyToId": "1",
        "value": {
            "actionName": "feedback",
            "actionValue": {"reaction": "like", "feedback": '{"feedbackText":"ok"}'},
        },
    }
    card = {**activity, "value": {"action": "human", "request_id": "r1"}}
    teams = [json.dumps(a).encode() for a in (activity, feedback, card)]
    tickets = [
        bytes([PROVIDERS.index("jira")]) + json.dumps(jira_comment("AD-1", "10", "Fixed")).encode(),
        bytes([PROVIDERS.index("zendesk")])
        + json.dumps(zendesk_comment("7", 1, "Fixed", public=True)).encode(),
        bytes([PROVIDERS.index("servicenow")])
        + json.dumps(
            {
                "number": "INC1",
                "sys_id": "s1",
                "comments": "2026-01-01 - Ana (Additional comments)\nFixed",
                "state_changed": True,
                "state_code": "6",
            }
        ).encode(),
        bytes([PROVIDERS.index("webhook")])
        + json.dumps({"id": "e1", "ticket": "T-1", "type": "comment", "text": "Fixed"}).encode(),
    ]
    readme = (REPO / "README.md").read_text()
    files = [
        bytes([KINDS.index("acl.yaml")]) + (REPO / "bot" / "demo" / "acl.yaml").read_bytes(),
        bytes([KINDS.index("people.yaml")])
        + (REPO / "bot" / "demo" / "directory.yaml").read_bytes(),
        bytes([KINDS.index("people.csv")])
        + b"email,name,groups\nana@example.com,Ana,hr;managers\n",
        bytes([KINDS.index("library.yaml")])
        + (REPO / "tests" / "data" / "injection" / "library.yaml").read_bytes(),
        bytes([KINDS.index("library.jsonl")])
        + b'{"library": {"name": "x"}}\n{"id": "a", "question": "q?", "as": "a@b.co"}\n',
        bytes([KINDS.index("config.yaml")])
        + readme.split("## Configuration", 1)[1]
        .split("```yaml\n", 1)[1]
        .split("```", 1)[0]
        .encode(),
    ]
    out = []
    for index, group in enumerate((slack, teams, tickets, files)):
        out.extend(bytes([index]) + seed for seed in group)
    return out


def test_the_edge_parsers_survive_coverage_guided_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number, seed in enumerate(_seeds()):
        (corpus / f"seed-{number}").write_bytes(seed)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "support" / "atheris_targets.py"),
            "all",
            str(corpus),
            f"-runs={RUNS}",
            "-seed=1",
            "-max_len=4096",
            # libFuzzer's RSS check reads the peak RSS, which Linux carries over fork and exec
            # from this test process (a pytest worker holding the embedding model): the usual
            # 2 GB allowance is counted on top of that; one allocation keeps the usual limit.
            f"-rss_limit_mb={_peak_rss_mb() + 2048}",
            "-malloc_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
        ],
        # Only what the targets need: nothing another test left in this worker's environment
        # (a configuration, a data dir) reaches the parsers, so a run is the same everywhere.
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(tmp_path)),
            "PYTHONPATH": str(REPO),
            "HF_HUB_OFFLINE": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "ANONYMIZED_TELEMETRY": "False",
        },
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert f"Done {RUNS} runs" in log, log[-2000:]
    assert "cov:" in log


def _peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
