"""Every file or folder picker comes from ``cnndesk.qt.file_dialogs`` (fitted to the screen):
Qt's static ``QFileDialog.get…`` opened Qt's own dialog taller than a 1280x720 screen at 200 %."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "cnndesk"
THE_ONE = PKG / "qt" / "file_dialogs.py"


def uses(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.lineno for n in ast.walk(tree)
            if (isinstance(n, ast.Name) and n.id == "QFileDialog")
            or (isinstance(n, ast.alias) and n.name == "QFileDialog")
            or (isinstance(n, ast.Attribute) and n.attr == "QFileDialog")]


def test_no_file_dialog_outside_file_dialogs():
    bad = [f"{p.relative_to(PKG.parent)}:{line}" for p in sorted(PKG.rglob("*.py")) if p != THE_ONE for line in uses(p)]
    assert not bad, "use cnndesk.qt.file_dialogs (choose_folder, open_file(s), save_file):\n" + "\n".join(bad)
    assert uses(THE_ONE), "the scan finds the one place (so it would find another)"
