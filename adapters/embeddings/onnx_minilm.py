"""The packaged MiniLM on ONNX Runtime: the same vectors as sentence-transformers, faster.

Why: a torch forward pass is a few hundred small ops, each giving up and re-taking the GIL;
next to a busy event loop every re-take can wait a whole switch interval, so a 20 ms
encoding took hundreds of milliseconds under load. ONNX Runtime runs the whole graph in one
call without the GIL, and costs less per call besides.

The ONNX file is exported from the packaged weights on first use (`onnx_export.py`) and
cached under `$XDG_CACHE_HOME/answerdesk/onnx/` (default `~/.cache`), keyed by the model's
configs and weights file; if the cache is not writable the export is kept in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import structlog

from adapters.embeddings.onnx_export import INPUT_NAMES, OUTPUT_NAME

log = structlog.get_logger()

EXPORT_REVISION = "1"  # bump when export_minilm changes what it writes


class OnnxSentenceEncoder:
    """Tokenizer and ONNX session for one sentence-transformers BERT model."""

    def __init__(self, model_dir: Path, onnx_model: bytes | Path, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # As sentence-transformers: truncate at the model's max_seq_length, pad per batch.
        self._tokenizer.enable_truncation(int(config["max_seq_length"]))
        self._tokenizer.no_padding()  # batches are padded here, grouped by length
        self._dimension = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning workers would take the CPU the event loop needs between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        source = str(onnx_model) if isinstance(onnx_model, Path) else onnx_model
        self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for rows in _length_batches([len(e.ids) for e in encodings], batch_size):
            width = len(encodings[rows[0]].ids)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                tokens = encodings[index].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            feeds = dict(zip(INPUT_NAMES, (ids, mask, np.zeros_like(ids)), strict=True))
            out[rows] = self._session.run([OUTPUT_NAME], feeds)[0]
        return out


def _length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar token length, longest first.

    The encoder's cost grows with batch × longest sequence, so padding is wasted work: a
    batch only takes texts at least 90% as long as its longest (one call per group costs
    far less than the padding it saves)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        if (
            current is None
            or len(current) >= batch_size
            or lengths[index] < 0.9 * lengths[current[0]]
        ):
            batches.append([index])
        else:
            current.append(index)
    return batches


def load_onnx_encoder(model_dir: Path, threads: int) -> OnnxSentenceEncoder:
    """The encoder for `model_dir`, exporting it first when no cached export exists."""
    cached = cached_export(model_dir)
    if cached.is_file():
        try:
            return OnnxSentenceEncoder(model_dir, cached, threads)
        except Exception as exc:  # a damaged cache file: export again
            log.warning("cached ONNX model unusable, exporting again", error=str(exc)[:200])
    from adapters.embeddings.onnx_export import export_minilm

    exported = export_minilm(model_dir)
    try:
        _write_atomically(cached, exported)
    except OSError as exc:  # a read-only home: keep the export in memory
        log.warning("cannot cache the ONNX model", path=str(cached), error=str(exc))
    return OnnxSentenceEncoder(model_dir, exported, threads)


def cached_export(model_dir: Path) -> Path:
    """Where the export of `model_dir` is cached (whether or not it exists yet)."""
    return _cache_dir() / f"{_weights_key(model_dir)}.onnx"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "answerdesk" / "onnx"


def _weights_key(model_dir: Path) -> str:
    """The configs' contents and the weights file's identity (path, size, mtime): reading
    the 90 MB of weights on every start cost ~0.2 s; a reinstall changes the mtime."""
    digest = hashlib.sha256(EXPORT_REVISION.encode())
    for name in ("config.json", "sentence_bert_config.json"):
        digest.update((model_dir / name).read_bytes())
    weights = (model_dir / "model.safetensors").resolve()
    stat = weights.stat()
    digest.update(f"{weights}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"minilm-{digest.hexdigest()[:20]}"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the cache from other users
        os.replace(tmp, path)  # readers see the old file or the whole new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
