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
        value = self.settings.get("recent")
        if isinstance(value, str):
            value = [value]
        return [str(p) for p in (value or []) if p]

    def add(self, path: str) -> None:
        path = os.path.abspath(path)
        items = [path] + [p for p in self.paths() if p != path]
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
