"""Refresh the demo library's committed baselines after an intended change of answers:

    python -m tests.support.eval_baselines

Ingests the demo corpus into a scratch data dir, then runs the library exactly as
tests/integration/test_eval_gate.py does (the extractive tier, and the model-server double in
its cited-answer mode) and writes each run's summary.json over the committed baseline.
Review the diff before committing it: a baseline is a promise.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.support.cli import REPO, run
from tests.support.model_server import ModelServer

DEMO = REPO / "bot" / "demo"
TARGETS = {
    "extractive": DEMO / "eval" / "baseline.json",
    "model-double": REPO / "tests" / "data" / "eval" / "demo_model_baseline.json",
}


def main() -> int:
    from tests.integration.test_eval_gate import MODEL_KEY, model_config

    scratch = Path(tempfile.mkdtemp(prefix="answerdesk-baselines-"))
    data_dir = scratch / "var"
    env = {"ANSWERDESK_DATA_DIR": str(data_dir)}
    try:
        for args in (
            ("directory", "import", str(DEMO / "directory.yaml")),
            ("ingest", str(DEMO / "corpus"), "--acl-file", str(DEMO / "acl.yaml")),
        ):
            done = run(scratch, *args, env=env)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
        with ModelServer() as server:
            server.set_default("judge", 'text:{"groundedness": 4, "relevance": 5, "reason": "ok"}')
            configs = {"extractive": (), "model-double": ("--config",)}
            for name, target in TARGETS.items():
                extra: tuple[str, ...] = configs[name]
                if extra:
                    extra = (*extra, str(model_config(scratch, server, data_dir)))
                report = scratch / name
                done = run(
                    scratch,
                    "eval",
                    str(DEMO / "eval" / "library.yaml"),
                    *extra,
                    "--report",
                    str(report),
                    env={**env, **MODEL_KEY},
                    cwd=REPO,
                )
                if done.returncode not in (0, 1) or not (report / "summary.json").exists():
                    print(done.stderr, file=sys.stderr)
                    return 1
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(report / "summary.json", target)
                print(f"{name}: {target.relative_to(REPO)}")
                print(done.stdout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
