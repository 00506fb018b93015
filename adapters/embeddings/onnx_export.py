"""A one-time export of the packaged MiniLM to ONNX, with pooling and normalisation inside.

Run once per model (the result is cached on disk, see `onnx_minilm.py`); it needs torch,
transformers and the `onnx` package, none of which the exported model needs at run time.
The graph computes exactly what sentence-transformers computes for this model: the BERT
encoder, mean pooling over the attention mask, then L2 normalisation.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"
OPSET = 17


def export_minilm(model_dir: Path) -> bytes:
    """The ONNX model (serialised) of the sentence encoder stored in `model_dir`."""
    import torch
    from transformers import AutoModel

    # Eager attention traces to plain ONNX ops; the padding mask stays an input, so one
    # graph serves every batch shape (checked against the torch output in the tests).
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    # A padded example: the traced graph must take the mask into account.
    ids = torch.tensor([[101, 7592, 102, 0, 0], [101, 2129, 2116, 2420, 102]])
    example = (ids, (ids != 0).long(), torch.zeros_like(ids))
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter, not errors
        torch.onnx.export(
            SentenceEncoder().eval(),
            example,
            buffer,
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={**dynamic, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
        )
    return buffer.getvalue()
