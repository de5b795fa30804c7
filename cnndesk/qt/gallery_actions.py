"""The gallery's Delete key and context menu (Open in the default app, Show in folder, Copy path,
Remove from list). Removing takes photos out of the session, never off the disk."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from cnndesk.qt.item_models.gallery import ItemRole
from cnndesk.qt.widgets.file_actions import file_menu


def selected_rows(win) -> list[int]:
    return sorted({i.row() for i in win.gallery.selectionModel().selectedIndexes()})


def remove_selected(win) -> int:
    rows = selected_rows(win)
    if not rows:
        cur = win.gallery.currentIndex()
        rows = [cur.row()] if cur.isValid() else []
    n = win.gallery_model.remove_rows(rows)
    if n:
        win.status(f"Removed {n} photo{'s' if n != 1 else ''} from the gallery (the files stay on disk)")
        if win.gallery_model.rowCount():
            row = min(rows[0], win.gallery_model.rowCount() - 1)
            win.gallery.setCurrentIndex(win.gallery_model.index(row))
        else:
            win.image_view.set_image(None)
            for label in (win.panel.headline, win.panel.detail, win.panel.meta):
                label.setText("")
            win.panel.bars.set_prediction(None)
    return n


def install_gallery_actions(win) -> None:
    act = QAction("Remove from Gallery", win.gallery)
    act.setShortcuts([QKeySequence(QKeySequence.StandardKey.Delete), QKeySequence(Qt.Key.Key_Backspace)])
    act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    act.triggered.connect(lambda: remove_selected(win))
    win.gallery.addAction(act)
    win.gallery.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def menu(pos):
        index = win.gallery.indexAt(pos)
        if not index.isValid():
            return
        if not win.gallery.selectionModel().isSelected(index):
            win.gallery.setCurrentIndex(index)
        items = [win.gallery_model.index(r).data(ItemRole) for r in selected_rows(win)]
        m = file_menu(win.gallery, [i.path for i in items if i is not None and i.path], remove=lambda: remove_selected(win))
        m.exec(win.gallery.viewport().mapToGlobal(pos))

    win.gallery.customContextMenuRequested.connect(menu)
