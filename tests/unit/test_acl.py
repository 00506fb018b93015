from pathlib import Path

import pytest

from core.acl import AclFileError, acl_from_front_matter, load_policy, policy_from_mapping
from core.principals import PrincipalError, acl_key, parse_principal, principals_for_user


def test_principal_forms_are_canonical() -> None:
    assert parse_principal("PUBLIC") == "public"
    assert parse_principal("group:HR") == "group:hr"
    assert parse_principal("user:CEO@Example.com") == "user:ceo@example.com"
    for bad in ("role:hr", "hr", "user:not-an-email", "group:", ""):
        with pytest.raises(PrincipalError):
            parse_principal(bad)


def test_user_principals_include_public_self_and_groups() -> None:
    assert principals_for_user("A@x.io", ["hr", "Finance"]) == {
        "public",
        "user:a@x.io",
        "group:hr",
        "group:finance",
    }


def test_acl_key_is_order_independent() -> None:
    assert acl_key(["group:a", "public"]) == acl_key(["public", "group:a"])
    assert acl_key(["group:a"]) != acl_key(["group:b"])


def test_first_matching_rule_wins_and_default_applies() -> None:
    policy = policy_from_mapping(
        {
            "default": ["public"],
            "rules": [
                {"match": "hr/secret/**", "allow": ["user:ceo@example.com"]},
                {"match": "hr/**", "allow": ["group:hr", "user:ceo@example.com"]},
                {"match": "role_library.pdf", "allow": ["group:hr"]},
                {"match": "*.txt", "allow": ["group:it"]},
            ],
        }
    )
    assert policy.acl_for("hr/secret/pay.md") == {"user:ceo@example.com"}
    assert policy.acl_for("hr/a/b/c.md") == {"group:hr", "user:ceo@example.com"}
    assert policy.acl_for("role_library.pdf") == {"group:hr"}
    assert policy.acl_for("archive/role_library.pdf") == {"group:hr"}  # no "/": any depth
    assert policy.acl_for("notes.txt") == {"group:it"}
    assert policy.acl_for("handbook.pdf") == {"public"}
    assert policy.acl_for("hrx/a.md") == {"public"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("rules: [", "cannot read ACL file"),
        ("- just a list", "must be a mapping"),
        ("default: [public]\nrules:\n  - match: a\n    allow: [role:x]\n", "unknown principal"),
        ("rules:\n  - match: a\n", "'match' and 'allow' and/or 'classification'"),
        ("rules:\n  - match: a\n    allow: [public]\n    owner: x\n", "and nothing else"),
        ("rules:\n  - match: a\n    classification: secret\n", "public, internal, confidential"),
        ("default: [public]\nextra: 1\n", "unknown key"),
        ("rules:\n  - match: a\n    allow: []\n", "at least one principal"),
    ],
)
def test_malformed_acl_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "acl.yaml"
    path.write_text(content)
    with pytest.raises(AclFileError, match=message):
        load_policy(path)


def test_missing_acl_file() -> None:
    with pytest.raises(AclFileError, match="not found"):
        load_policy(Path("/nonexistent/acl.yaml"))


def test_front_matter_acl_overrides() -> None:
    assert acl_from_front_matter({"acl": ["group:HR"]}) == {"group:hr"}
    assert acl_from_front_matter({"title": "x"}) is None
    with pytest.raises(AclFileError):
        acl_from_front_matter({"acl": ["nobody"]})
