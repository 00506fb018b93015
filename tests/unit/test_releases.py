"""Releases, object-level: the release file (validated with the configuration's models,
secrets refused, the id a hash of the effective content), the canary split, and the switch
every replica answers through (re-reads the state after refresh_s; keeps answering when it
cannot)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from bot.release_file import (
    ReleaseFileError,
    diff,
    load_release_file,
    release_id,
    settings_release,
    with_release,
)
from bot.settings import Settings
from core.answering.prompt import SYSTEM_PROMPT
from core.answering.types import Asker, Question
from core.releases import ReleaseState, ReleaseSwitch, canary_bucket, release_for


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(text)
    return path


def test_a_release_file_is_validated_like_the_configuration(tmp_path: Path) -> None:
    content = load_release_file(write(tmp_path, "gate: {min_score: 0.3}\n"))
    assert content["gate"]["min_score"] == 0.3
    assert content["retrieval"]["top_k"] == 5  # defaults filled in: the effective content
    assert content["prompt"]["system"] == SYSTEM_PROMPT
    for text, needle in (
        ("retrieval: {top_k: 0}\n", "retrieval.top_k"),
        ("promt: {system: hello there, this is long enough}\n", "promt"),
        ("models: {tiers: [{name: a, model: openai/a, api_key: sk-live-123}]}\n", "api_key_env"),
        ("data_dir: /tmp\n", "data_dir"),
        ("- just a list\n", "mapping"),
    ):
        with pytest.raises(ReleaseFileError) as caught:
            load_release_file(write(tmp_path, text))
        message = str(caught.value)
        assert needle in message and "\n" not in message, message
        assert "sk-live-123" not in message


def test_the_id_is_the_hash_of_the_effective_content(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    configured = settings_release(settings)
    # A file saying only what the defaults say is the configuration file's release.
    same = load_release_file(write(tmp_path, "retrieval: {top_k: 5}\ncache: {enabled: true}\n"))
    assert release_id(same) == release_id(configured)
    other = load_release_file(write(tmp_path, "retrieval: {top_k: 6}\n"))
    assert release_id(other) != release_id(configured)
    assert len(release_id(other)) == 12
    changes = diff(configured, other)
    assert changes == [{"key": "retrieval.top_k", "old": 5, "new": 6}]


def test_a_release_reads_tier_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELEASE_TEST_KEY", "sk-from-env")
    content = load_release_file(
        write(
            tmp_path,
            "models: {tiers: [{name: fast, model: openai/fast, api_key_env: RELEASE_TEST_KEY}]}\n"
            "prompt: {system: 'Answer only from the sources, and cite them as [n].'}\n",
        )
    )
    assert "api_key" not in content["models"]["tiers"][0]  # never stored
    settings, prompt = with_release(Settings(data_dir=tmp_path), content)
    assert settings.models.tiers[0].api_key.get_secret_value() == "sk-from-env"
    assert prompt.startswith("Answer only from the sources")


def test_the_canary_split_is_a_documented_hash_of_the_conversation() -> None:
    canary = "0123456789ab"
    digest = hashlib.sha256(b"0123456789ab:thread-7").digest()
    assert canary_bucket(canary, "thread-7") == int.from_bytes(digest[:8], "big") % 100
    state = ReleaseState(active="a" * 12, canary=canary, share=30)
    chosen = {c: release_for(state, c) for c in (f"c{i}" for i in range(400))}
    on_canary = sum(1 for r in chosen.values() if r == canary)
    assert 80 <= on_canary <= 160  # 30% of 400, give or take the hash
    assert all(release_for(state, c) == r for c, r in chosen.items())  # a thread stays
    assert release_for(ReleaseState(active="x"), "c1") == "x"


class FakeService:
    def __init__(self, name: str) -> None:
        self.name = name
        self.warmed = 0

    async def answer(self, question: Question, progress: object = None) -> str:
        return f"{self.name}:{question.text}:{progress}"

    async def explain(self, question: Question) -> str:  # a later entry point
        return f"{self.name} explains"

    async def warm_up(self) -> None:
        self.warmed += 1

    def breaker_states(self) -> dict[str, str]:
        return {"tier": self.name}


class FakeSource:
    def __init__(self) -> None:
        self.current = ReleaseState()
        self.reads = 0
        self.down = False

    async def state(self) -> ReleaseState:
        self.reads += 1
        if self.down:
            raise ConnectionError("database down")
        return self.current


async def test_the_switch_follows_the_state_within_refresh_s() -> None:
    source = FakeSource()
    built: list[str | None] = []

    async def build(release: str | None) -> FakeService:
        built.append(release)
        return FakeService(release or "configured")

    switch = ReleaseSwitch(source, build, FakeService("configured"), refresh_s=0.5)  # type: ignore[arg-type]
    ask = Question("hi", Asker(email="a@b.example"), conversation_id="t1")
    assert await switch.answer(ask) == "configured:hi:None"
    source.current = ReleaseState(active="r1", version=1)
    assert await switch.answer(ask, "sink") == "configured:hi:sink"  # read less than 0.5 s ago
    assert source.reads == 1
    await asyncio.sleep(0.55)
    assert await switch.answer(ask, progress="sink") == "r1:hi:sink"
    assert built == ["r1"]
    assert switch.breaker_states() == {"tier": "r1"}
    assert await switch.explain(ask) == "r1 explains"  # any coroutine taking a Question
    # A canary takes its share by conversation; the active release keeps the rest.
    source.current = ReleaseState(active="r1", canary="r2", share=50, version=2)
    await asyncio.sleep(0.55)
    await switch.refresh()
    for conversation in (f"c{i}" for i in range(20)):
        question = Question("q", Asker(email="a@b.example"), conversation_id=conversation)
        expected = "r2" if canary_bucket("r2", conversation) < 50 else "r1"
        assert (await switch.answer(question)).startswith(f"{expected}:")
    assert built == ["r1", "r2"]  # r1 reused, not rebuilt
    # A state that cannot be read leaves the releases answering.
    source.down = True
    await asyncio.sleep(0.55)
    assert (await switch.answer(ask)).split(":")[0] in ("r1", "r2")
    assert switch.state.canary == "r2"


async def test_the_state_is_read_at_most_once_per_refresh() -> None:
    source = FakeSource()

    async def build(release: str | None) -> FakeService:
        return FakeService(str(release))

    switch = ReleaseSwitch(source, build, FakeService("configured"), refresh_s=60)  # type: ignore[arg-type]
    ask = Question("hi", Asker(email="a@b.example"))
    await asyncio.gather(*(switch.answer(ask) for _ in range(50)))
    assert source.reads == 1
