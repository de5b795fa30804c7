"""Accept one dropped local folder on a dialog and on its folder field (a QLineEdit would otherwise
take the drop as text): the dialog's ``_folder_dropped(path)`` loads it."""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent

_DRAG = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)


def dropped_folder(mime) -> str | None:
    """The one local folder being dragged, else None (files are not a dataset)."""
    if mime is None or not mime.hasUrls():
        return None
    paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    return paths[0] if len(paths) == 1 and os.path.isdir(paths[0]) else None


def same_folder(a: str, b: str) -> bool:
    return os.path.realpath(os.path.expanduser(a.strip())) == os.path.realpath(b)


class FolderDropMixin:
    """For a QDialog with a ``folder`` line edit; install with ``self.folder.installEventFilter(self)``
    and ``self.setAcceptDrops(True)``. Drops are refused while the field is disabled."""

    def _wants(self, event) -> str | None:
        folder = dropped_folder(event.mimeData())
        return folder if folder is not None and self.folder.isEnabled() else None

    def eventFilter(self, obj, event):
        if obj is getattr(self, "folder", None) and event.type() in _DRAG and self._wants(event) is not None:
            (self.dropEvent if event.type() == QEvent.Type.Drop else self.dragEnterEvent)(event)
            return True
        return super().eventFilter(obj, event)

    def dragEnterEvent(self, event):
        if self._wants(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        self.dragEnterEvent(event)

    def dropEvent(self, event):
        folder = self._wants(event)
        if folder is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self._folder_dropped(folder)
