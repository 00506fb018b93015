from pathlib import Path

import pytest

from bot.settings import ConfigError, load_settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.data_dir == Path("./var")
    assert settings.db_url.startswith("sqlite+aiosqlite:///")
    assert settings.db_url.endswith("var/answerdesk.db")
    assert settings.chroma_path == Path("./var/chroma")
    assert settings.chroma_url is None
    assert settings.embeddings.model is None


def test_yaml_then_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "answerdesk.yaml"
    config.write_text("retrieval:\n  top_k: 7\n  hybrid: false\ndata_dir: /srv/a\n")
    monkeypatch.setenv("ANSWERDESK_CONFIG", str(config))
    monkeypatch.setenv("ANSWERDESK_RETRIEVAL__TOP_K", "9")
    settings = load_settings()
    assert settings.retrieval.top_k == 9
    assert settings.retrieval.hybrid is False
    assert settings.data_dir == Path("/srv/a")


def test_scaled_out_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/answerdesk")
    monkeypatch.setenv("CHROMA_URL", "http://chroma:8000")
    settings = load_settings()
    assert settings.db_url == "postgresql+asyncpg://u@db:5432/answerdesk"
    assert settings.chroma_url == "http://chroma:8000"


@pytest.mark.parametrize(
    ("yaml_text", "env", "expected"),
    [
        ("retrieval:\n  top_k: -1\n", {}, "retrieval.top_k"),
        ("", {"ANSWERDESK_RETRIEVAL__TOP_K": "many"}, "retrieval.top_k"),
        ("retrieval:\n  topk: 3\n", {}, "retrieval.topk"),
        ("embeddings:\n  api_key: sk-123\n", {}, "embeddings.api_key: secrets are read only"),
        ("retrieval: [\n", {}, "cannot read"),
        ("", {"CHROMA_URL": "chroma:8000"}, "chroma_url must start with http"),
    ],
)
def test_invalid_config_is_one_line_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_text: str, env: dict, expected: str
) -> None:
    config = tmp_path / "answerdesk.yaml"
    config.write_text(yaml_text)
    monkeypatch.setenv("ANSWERDESK_CONFIG", str(config))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert "sk-123" not in message
