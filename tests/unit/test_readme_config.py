"""The configuration example in the README is a valid configuration, with every section."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_example_loads() -> None:
    text = README.read_text()
    section = text[text.index("## Configuration") : text.index("## Connect to Slack")]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    data = yaml.safe_load(block)
    settings = Settings(**data)  # sections forbid unknown keys: a stale key fails here
    assert set(data) >= {"embeddings", "retrieval", "models", "slack"}
    assert settings.slack.socket_mode is False
