"""An optional model judge: groundedness and relevance of an answer, 1–5, with a reason.

Never part of the gate (a judge is itself a model that drifts); it adds a column people can
read. A judge that fails or answers out of format leaves the case unjudged, with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from core.answering.model import ModelClient, ModelError, TierSpec
from core.answering.prompt import PromptSource, render_sources

JUDGE_PROMPT = """You grade answers of a company's document assistant.
Given the numbered sources, the question and the answer, rate:
- groundedness: 1 (claims not supported by the sources) to 5 (every claim supported);
- relevance: 1 (does not address the question) to 5 (fully answers it).
Reply with one JSON object only:
{"groundedness": <1-5>, "relevance": <1-5>, "reason": "<one sentence>"}"""

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class Judge:
    def __init__(self, models: ModelClient, tier: TierSpec) -> None:
        self._models = models
        self._tier = tier

    async def grade(
        self, question: str, answer: str, sources: Sequence[PromptSource]
    ) -> dict[str, Any]:
        messages = [
            {"role": "system", "content": JUDGE_PROMPT},
            {
                "role": "user",
                "content": f"Sources:\n\n{render_sources(sources)}\n\nQuestion: {question}\n\n"
                f"Answer:\n{answer}",
            },
        ]
        try:
            reply = await self._models.complete(self._tier, messages, self._tier.timeout_s)
        except ModelError as exc:
            return {"error": f"judge {exc.kind}: {str(exc)[:120]}"}
        return parse_grade(reply.text) | {"cost_usd": reply.cost_usd}


def parse_grade(text: str) -> dict[str, Any]:
    match = _OBJECT.search(text)
    try:
        data = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return {"error": "the judge did not answer with a JSON object"}
    out: dict[str, Any] = {"reason": str(data.get("reason") or "")[:300]}
    for key in ("groundedness", "relevance"):
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= 5:
            out[key] = float(value)
        else:
            return {"error": f"the judge gave no {key} between 1 and 5"}
    return out
