"""The Label workspace in the main window: its tab, the File menu's "Label a Folder…" (Ctrl+L),
its status messages, "Train now" opening Train a Model on the written dataset, and its shutdown on
quit. Kept out of main_window.py (which composes; this wires one workspace)."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

from cnndesk.qt.label.workspace import LabelWorkspace
from cnndesk.qt.main_tabs import TAB_LABEL


def install_label_workspace(win) -> LabelWorkspace:
    ws = LabelWorkspace(win.runner, win.settings)
    index = win.tabs.addTab(ws, "Label")
    assert index == TAB_LABEL
    ws.status.connect(lambda text: win.status(text, 6000))
    ws.train_requested.connect(lambda folder: _train_on(win, folder))

    def open_label(folder: str | None = None) -> None:
        win._show_tab(TAB_LABEL)
        ws.open_folder(folder)

    act = QAction("&Label a Folder\u2026", win)
    act.setShortcut(QKeySequence("Ctrl+L"))
    tip = "Sort a folder of unlabelled images into classes, with the CNN suggesting labels (Ctrl+L)"
    act.setToolTip(tip)
    act.setStatusTip(tip)
    act.triggered.connect(lambda: open_label())
    win.addAction(act)
    file_menu = win.menuBar().actions()[0].menu()
    file_menu.insertAction(win.act_paste, act)
    win.act_label = act
    win.label_workspace = ws
    win.destroyed.connect(ws.shutdown)
    return ws


def _train_on(win, folder: str) -> None:
    dlg = win.show_training()
    dlg.folder.setText(folder)
    dlg.load_folder(folder)
