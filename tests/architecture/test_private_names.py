"""No module reaches into another module's private names (``_name``): what is shared is public, so
a reader can tell a module's interface from its inside. Tests included, benchmarks too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["cnndesk", "tests", "bench", "scripts", "packaging"]


def _private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, modules = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnndesk"):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"from {node.module} import {a.name}")
                modules[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("cnndesk"):
                    modules[a.asname or a.name.split(".")[0]] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{modules[node.value.id]}.{node.attr}")
    return found


def test_no_private_name_is_used_across_modules():
    offenders = {}
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            uses = _private_uses(path)
            if uses:
                offenders[str(path.relative_to(ROOT))] = uses
    assert not offenders, f"private names used across modules: {offenders}"


def test_no_mixins_composition_instead():
    """Windows and dialogs compose controllers that own their state (a mixin uses attributes that
    its host defines: a reader cannot tell where they come from)."""
    mixins = []
    for path in sorted((ROOT / "cnndesk").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Mixin"):
                mixins.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert mixins == []
