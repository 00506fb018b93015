"""Teams as operators meet it outside a chat: the package command and the configuration,
through the CLI in a subprocess."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

from adapters.teams.icons import draw_color, draw_outline, png_info
from adapters.teams.package import MANIFEST_DIR, validate_manifest
from tests.support.cli import REPO, assert_usage_error, run

APP_ID = "6b1f7c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
TEAMS_ENV = {
    "MICROSOFT_APP_ID": APP_ID,
    "MICROSOFT_APP_PASSWORD": "app-password-value-42",
    "MICROSOFT_APP_TENANT_ID": "6f1c2a9e-4b7d-4e3a-9c5f-2d8e1b0a7c43",
}


def test_package_writes_an_upload_zip(tmp_path: Path) -> None:
    out = tmp_path / "answerdesk-teams.zip"
    done = run(
        tmp_path, "teams", "package", "--app-id", APP_ID, "--domain", "bot.contoso.com",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == str(out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        extracted = tmp_path / "extracted"
        archive.extractall(extracted)
    assert validate_manifest(manifest, extracted) == []
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == ["bot.contoso.com"]
    assert manifest["developer"]["privacyUrl"] == "https://bot.contoso.com/privacy"
    assert manifest["manifestVersion"] == "1.22" and "v1.22" in manifest["$schema"]
    assert set(manifest["bots"][0]["scopes"]) == {"personal", "team", "groupChat"}
    assert manifest["bots"][0]["commandLists"][0]["commands"]
    assert png_info((extracted / "color.png").read_bytes())[:2] == (192, 192)
    assert png_info((extracted / "outline.png").read_bytes()) == (32, 32, 6)  # with alpha


def test_package_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "pkg.zip"
    bad_id = run(tmp_path, "teams", "package", "--app-id", "my-bot", "--domain", "a.com",
                 "--out", str(out))  # fmt: skip
    assert_usage_error(bad_id, "--app-id")
    bad_domain = run(tmp_path, "teams", "package", "--app-id", APP_ID, "--domain",
                     "not a host", "--out", str(out))  # fmt: skip
    assert_usage_error(bad_domain, "--domain")
    no_folder = run(tmp_path, "teams", "package", "--app-id", APP_ID, "--domain", "a.com",
                    "--out", str(tmp_path / "missing" / "x.zip"))  # fmt: skip
    assert_usage_error(no_folder, "does not exist")
    assert not out.exists()


def test_the_shipped_icons_are_the_projects_drawings() -> None:
    color = (MANIFEST_DIR / "color.png").read_bytes()
    outline = (MANIFEST_DIR / "outline.png").read_bytes()
    assert color == draw_color() and outline == draw_outline()
    # The outline is white on a transparent background, as Teams requires.
    alpha = _alphas(outline)
    assert 0 in alpha and 255 in alpha


def _alphas(png: bytes) -> set[int]:
    import zlib

    data = io.BytesIO(png[8:])
    raw = b""
    while chunk := data.read(8):
        length, kind = int.from_bytes(chunk[:4], "big"), chunk[4:]
        body = data.read(length)
        data.read(4)
        if kind == b"IDAT":
            raw += body
    pixels = zlib.decompress(raw)
    width = png_info(png)[0]
    rows = [pixels[i * (width * 4 + 1) + 1 : (i + 1) * (width * 4 + 1)] for i in range(width)]
    return {row[i + 3] for row in rows for i in range(0, len(row), 4)}


def test_config_check_reports_teams_and_masks_the_password(tmp_path: Path) -> None:
    """On the README's example configuration (section "Connect to Teams")."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Connect to Teams") : readme.index("## Streaming")]
    [example] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    config = tmp_path / "answerdesk.yaml"
    config.write_text(example)
    env = {"ANSWERDESK_CONFIG": str(config), **TEAMS_ENV}
    done = run(tmp_path, "config", "check", env=env)
    assert done.returncode == 0, done.stderr
    assert "app-password-value-42" not in done.stdout + done.stderr
    assert f"ok       teams: MultiTenant app {APP_ID}" in done.stdout
    off = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(config)})
    assert "off      teams: not configured" in off.stdout
    single = run(
        tmp_path,
        "config",
        "check",
        env={"ANSWERDESK_CONFIG": str(config), **TEAMS_ENV, "MICROSOFT_APP_TYPE": "SingleTenant",
             "MICROSOFT_APP_TENANT_ID": ""},
    )  # fmt: skip
    assert single.returncode == 2
    assert "SingleTenant app needs MICROSOFT_APP_TENANT_ID" in single.stderr


def test_the_app_password_is_refused_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "answerdesk.yaml"
    config.write_text("teams:\n  app_password: hunter2\n")
    done = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(config)})
    assert_usage_error(done, "teams.app_password", "MICROSOFT_APP_PASSWORD")
    assert "hunter2" not in done.stdout + done.stderr


def test_the_outbound_token_is_fetched_once_and_failures_name_no_secret() -> None:
    import pytest

    from adapters.teams.sdk import BotFrameworkConfig, ClientCredentialsToken
    from tests.support.botframework import BotFrameworkDouble

    with BotFrameworkDouble(APP_ID, "right-secret") as double:
        good = BotFrameworkConfig(APP_ID, "right-secret", double.metadata_url, double.token_url)
        token = ClientCredentialsToken(good)
        assert token.get() == token.get() and token.get() in double.issued
        assert len(double.token_requests) == 1  # cached until shortly before it expires
        assert "right-secret" not in repr(good)
        bad = ClientCredentialsToken(
            BotFrameworkConfig(APP_ID, "wrong-secret", double.metadata_url, double.token_url)
        )
        with pytest.raises(PermissionError) as refused:
            bad.get()
        assert str(refused.value) == "token endpoint answered HTTP 401"
        assert refused.value.__cause__ is None
    down = ClientCredentialsToken(
        BotFrameworkConfig(APP_ID, "s3cret", double.metadata_url, double.token_url)
    )
    with pytest.raises(PermissionError) as unreachable:
        down.get()
    assert str(unreachable.value) == "token endpoint failed (ConnectionError)"
    # Raised `from None`: a logged traceback stops here, before the frames holding the secret.
    assert unreachable.value.__cause__ is None and unreachable.value.__suppress_context__
