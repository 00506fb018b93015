"""The layout's promises (ARCHITECTURE §1, §7a), checked on the source: core/ knows no
platform, the chat adapters leave conversation decisions to core/conversation, and only
adapters/teams/sdk.py imports the Bot Framework SDK."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLATFORM_PACKAGES = ("adapters", "bot", "slack_sdk", "slack_bolt", "aiohttp", "botbuilder")


def modules(folder: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((REPO / folder).rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_platform_framework_or_outer_layer() -> None:
    found = list(modules("core"))
    assert any(path.parent.name == "conversation" for path, _ in found)
    for path, tree in found:
        for name in imported(tree):
            assert name.split(".")[0] not in PLATFORM_PACKAGES, f"{path}: imports {name}"


@pytest.mark.parametrize("adapter", ["adapters/slack", "adapters/teams"])
def test_the_chat_adapters_open_no_tickets_and_decide_no_offers(adapter: str) -> None:
    found = list(modules(adapter))
    assert any(path.name == "bot.py" for path, _ in found)
    for path, tree in found:
        assert "core.tickets" not in imported(tree), path
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
            assert name not in {"TicketRequest", "TicketProvider"}, f"{path}: uses {name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                # The conversation store's decisions (votes counted, offers claimed) are
                # core/conversation's; the adapter only claims its own event ids (handed a
                # claim function by the composition root).
                assert node.func.attr not in {"vote", "claim", "record"}, (
                    f"{path}: {node.func.attr}"
                )


def test_only_the_sdk_module_imports_botbuilder() -> None:
    for folder in ("adapters", "bot", "core"):
        for path, tree in modules(folder):
            sdk = {n for n in imported(tree) if n.split(".")[0] in ("botbuilder", "botframework")}
            if path != REPO / "adapters/teams/sdk.py":
                assert not sdk, f"{path}: imports {sdk}"
