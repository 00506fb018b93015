from pathlib import Path

import pytest

from adapters.db.directory import SqlDirectory
from adapters.db.engine import create_engine, upgrade
from core.directory import DirectoryFileError, PlatformIdentity, load_directory_file

YAML = """
users:
  - email: Ana@Example.com
    name: Ana
    groups: [hr, finance]
    slack_user_id: U1
    slack_team_id: T1
  - email: bo@example.com
    name: Bo
    groups: []
    teams_aad_object_id: 0A0B-C
    teams_tenant_id: TEN
"""


@pytest.fixture
async def directory(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    await upgrade(url)
    engine = create_engine(url)
    yield SqlDirectory(engine)
    await engine.dispose()


async def test_import_show_reimport_and_replace(directory: SqlDirectory, tmp_path: Path) -> None:
    path = tmp_path / "dir.yaml"
    path.write_text(YAML)
    result = await directory.import_entries(load_directory_file(path), replace=False)
    assert result == {"imported": 2, "created": 2, "updated": 0, "removed": 0}
    ana = await directory.resolve_email("ana@example.com")
    assert ana.known
    assert ana.principals == {"public", "user:ana@example.com", "group:hr", "group:finance"}
    by_slack = await directory.resolve_identity(PlatformIdentity("slack", "T1", "U1"))
    assert by_slack.email == "ana@example.com"
    assert (await directory.resolve_identity(PlatformIdentity("slack", "T2", "U1"))).known is False
    by_teams = await directory.resolve_identity(PlatformIdentity("teams", "ten", "0a0b-c"))
    assert by_teams.email == "bo@example.com"

    # Re-import is idempotent and updates groups.
    csv_path = tmp_path / "dir.csv"
    csv_path.write_text("email,name,groups\nana@example.com,Ana,hr\n")
    result = await directory.import_entries(load_directory_file(csv_path), replace=False)
    assert result["updated"] == 1
    ana = await directory.resolve_email("ana@example.com")
    assert ana.principals == {"public", "user:ana@example.com", "group:hr"}
    assert (await directory.resolve_email("bo@example.com")).known

    # --replace drops users missing from the file, and their identities.
    result = await directory.import_entries(load_directory_file(csv_path), replace=True)
    assert result["removed"] == 1
    assert not (await directory.resolve_email("bo@example.com")).known
    assert not (await directory.resolve_identity(PlatformIdentity("teams", "ten", "0a0b-c"))).known


async def test_unknown_email_is_public_only(directory: SqlDirectory) -> None:
    unknown = await directory.resolve_email("stranger@example.com")
    assert unknown.known is False
    assert unknown.principals == {"public"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.yaml", "people: []", "top-level 'users:' list"),
        ("d.yaml", "users:\n  - email: not-an-email\n", "invalid email"),
        ("d.yaml", "users:\n  - email: a@x.io\n    groups: ['bad group!']\n", "invalid group"),
        ("d.yaml", "users:\n  - email: a@x.io\n  - email: A@x.io\n", "duplicate email"),
        ("d.yaml", "users:\n  - email: a@x.io\n    team: x\n", "unknown field"),
        ("d.csv", "name,groups\nx,y\n", "'email' column"),
        ("d.txt", "x", "must be .yaml"),
    ],
)
def test_bad_directory_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DirectoryFileError, match=message):
        load_directory_file(path)
