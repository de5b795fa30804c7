"""The context menu for files in lists and tables: Open, Open in the default app, Show in folder,
Copy path (shared by the folder table and the gallery)."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QIcon
from PySide6.QtWidgets import QMenu


def show_in_folder(path: str) -> bool:
    """Open the folder holding ``path`` in the system file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path) or "."))


def copy_paths(paths: list[str]) -> None:
    QGuiApplication.clipboard().setText("\n".join(paths))


def file_menu(parent, paths: list[str], open_in_app: Callable[[], None] | None = None,
              remove: Callable[[], None] | None = None) -> QMenu:
    menu = QMenu(parent)
    paths = [p for p in paths if p]
    many = len(paths) > 1
    if open_in_app is not None:
        menu.addAction(QIcon.fromTheme("document-open"), "Open in cnndesk", open_in_app)
    if paths:
        menu.addAction("Open with the Default App", lambda: [QDesktopServices.openUrl(QUrl.fromLocalFile(p)) for p in paths[:20]])
        menu.addAction(QIcon.fromTheme("folder-open"), "Show in Folder", lambda: show_in_folder(paths[0]))
        menu.addSeparator()
        menu.addAction(QIcon.fromTheme("edit-copy"), "Copy Paths" if many else "Copy Path", lambda: copy_paths(paths))
    if remove is not None:
        menu.addSeparator()
        menu.addAction(QIcon.fromTheme("list-remove"), "Remove from List", remove)
    return menu
