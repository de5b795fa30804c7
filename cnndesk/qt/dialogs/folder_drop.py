"""Accept one dropped local folder on a dialog and on its folder field (a QLineEdit would otherwise
take the drop as text): :class:`FolderDropTarget` hands it to the dialog's callback."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject

_DRAG = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)


def dropped_folder(mime) -> str | None:
    """The one local folder being dragged, else None (files are not a dataset)."""
    if mime is None or not mime.hasUrls():
        return None
    paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    return paths[0] if len(paths) == 1 and os.path.isdir(paths[0]) else None


def same_folder(a: str, b: str) -> bool:
    return os.path.realpath(os.path.expanduser(a.strip())) == os.path.realpath(b)


class FolderDropTarget(QObject):
    """Accepts one dropped local folder on ``field`` (a QLineEdit) and on ``widgets`` (its dialog)
    while the field is enabled, and hands it to ``on_folder(path)``. Files are refused; other drops
    onto the field (text) go on as usual. An event filter: the dialog keeps its own event handlers."""

    def __init__(self, field, on_folder: Callable[[str], None], *widgets):
        super().__init__(field)
        self.field, self.on_folder = field, on_folder
        self.widgets = (field, *widgets)
        for w in self.widgets:
            w.setAcceptDrops(True)
            w.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() not in _DRAG or not any(obj is w for w in self.widgets):
            return False
        folder = dropped_folder(event.mimeData())
        if folder is None or not self.field.isEnabled():
            if obj is self.field:
                return False  # the line edit's own (text) drops
            event.ignore()
            return True
        event.acceptProposedAction()
        if event.type() == QEvent.Type.Drop:
            self.on_folder(folder)
        return True
