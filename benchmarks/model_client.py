"""The model client's own CPU per call, alone: sequential calls, whole and streamed, against
an OpenAI-compatible server (in its own process) that answers at once, with a prompt of the
demo corpus's size. Run it under py-spy to see where the time goes:

    .venv/bin/python benchmarks/model_client.py [--calls 300]
    .venv/bin/py-spy record -r 200 -f raw -o client.txt -- \
        .venv/bin/python benchmarks/model_client.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import model_server, parse_args

from adapters.llm import openai_wire
from adapters.llm.litellm_client import LiteLLMClient
from core.answering.model import TierSpec
from core.answering.prompt import PromptSource, build_messages

PASSAGE = (
    "Guest Wi-Fi passes are issued at the front desk and last 24 hours. Visitors sign in "
    "with the code printed on the pass; the network is separate from the staff network. "
) * 5  # about one 900-character chunk
MESSAGES = build_messages(
    "How long does a guest Wi-Fi pass last?",
    [PromptSource(f"Handbook {n}", None, PASSAGE) for n in range(5)],
)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parse_args(parser, {"calls": 5})
    with model_server() as url:
        tier = TierSpec(name="fast", model="openai/fast", api_base=url, api_key="local")
        openai_wire.retain()
        try:
            for streamed in (False, True):
                await _measure(tier, args.calls, streamed)
        finally:
            await openai_wire.release()


async def _measure(tier: TierSpec, calls: int, streamed: bool) -> None:
    client = LiteLLMClient()
    on_text = (lambda _text: None) if streamed else None
    for _ in range(10):  # warm up: connections, lazy imports, token counts
        await client.complete(tier, MESSAGES, 30, on_text)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await client.complete(tier, MESSAGES, 30, on_text)
    cpu_ms = (time.process_time() - cpu) * 1000 / calls
    wall_ms = (time.perf_counter() - wall) * 1000 / calls
    kind = "streamed" if streamed else "whole"
    print(f"{kind}: {cpu_ms:.2f} ms CPU per call ({wall_ms:.2f} ms wall, {calls} calls)")


if __name__ == "__main__":
    asyncio.run(main())
