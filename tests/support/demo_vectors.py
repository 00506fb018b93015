"""Write the demo corpus's passage vectors (`bot/demo/vectors.npz`, see
adapters/embeddings/known.py) after a change of the demo corpus or of chunking:

    python -m tests.support.demo_vectors

Ingests the demo corpus into a scratch data dir through the command line, reads the texts
ingestion embedded (each passage's search text) and encodes them with the packaged model.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from adapters.embeddings.known import save_table
from adapters.embeddings.local import LocalMiniLMEmbedder
from bot.wiring import DEMO_VECTORS
from tests.support.cli import REPO, run

DEMO = REPO / "bot" / "demo"


def demo_passage_texts(data_dir: Path) -> list[str]:
    """What ingestion embedded for every passage of the data dir."""
    with sqlite3.connect(data_dir / "answerdesk.db") as db:
        return [row[0] for row in db.execute("SELECT search_text FROM passages")]


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="answerdesk-vectors-"))
    try:
        done = run(scratch, "ingest", str(DEMO / "corpus"), "--acl-file", str(DEMO / "acl.yaml"))
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        texts = demo_passage_texts(scratch / "var")
        save_table(DEMO_VECTORS, texts, LocalMiniLMEmbedder())
        print(f"{len(set(texts))} passage vectors written to {DEMO_VECTORS.relative_to(REPO)}")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
