"""File ▸ Open Recent: the last files and folders opened (kept in the settings; missing ones are
dropped when the menu opens)."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QMenu

MAX = 10


class RecentMenu(QMenu):
    def __init__(self, settings, open_paths: Callable[[list[str]], None], parent=None):
        super().__init__("Open &Recent", parent)
        self.settings = settings
        self._open = open_paths
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def paths(self) -> list[str]:
        """The remembered paths, normalised, each once (older settings may hold "/a/b/" beside "/a/b")."""
        value = self.settings.get("recent")
        if isinstance(value, str):
            value = [value]
        out: list[str] = []
        seen: set[str] = set()
        for p in (value or []):
            if not p:
                continue
            p = normalise(str(p))
            if os.path.normcase(p) not in seen:
                seen.add(os.path.normcase(p))
                out.append(p)
        return out

    def add(self, path: str) -> None:
        path = normalise(path)
        key = os.path.normcase(path)
        items = [path] + [p for p in self.paths() if os.path.normcase(p) != key]
        self.settings.set("recent", items[:MAX])

    def clear_recent(self) -> None:
        self.settings.set("recent", [])
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        items = [p for p in self.paths() if os.path.exists(p)]
        for p in items:
            label = os.path.basename(p.rstrip(os.sep)) or p
            if os.path.isdir(p):
                label += os.sep
            act = self.addAction(label, lambda p=p: self._open([p]))
            act.setToolTip(p)
            act.setStatusTip(p)
        if not items:
            self.addAction("No recent files").setEnabled(False)
        self.addSeparator()
        self.addAction("Clear Recent", self.clear_recent).setEnabled(bool(items))


def normalise(path: str) -> str:
    """One spelling per file or folder: absolute, ``~`` expanded, no trailing slash, ``.``/``..``
    and symbolic links resolved."""
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))
