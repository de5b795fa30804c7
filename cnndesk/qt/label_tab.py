"""The Label workspace in the main window: its tab, the File menu's "Label a Folder…" (Ctrl+L),
its status messages, the models "Train now" saves (listed in the model picker; "Use it" selects
one), and its shutdown on quit. Kept out of main_window.py (which composes; this wires one workspace)."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QToolBar

from cnndesk.qt.label.workspace import LabelWorkspace
from cnndesk.qt.main_tabs import TAB_LABEL


def install_label_workspace(win) -> LabelWorkspace:
    ws = LabelWorkspace(win.runner, win.settings)
    index = win.tabs.addTab(ws, "Label")
    assert index == TAB_LABEL
    ws.status.connect(lambda text: win.status(text, 6000))
    ws.model_trained.connect(lambda path: _model_trained(win, path))
    ws.use_model.connect(lambda path: _use_model(win, path))
    # Edit ▸ Undo put files back that a "Write dataset…" by moving took away: the tab follows them now
    win.undo.undone.connect(ws.follow_undone)

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
    # on the toolbar too, beside training: sorting a pile is the step before it (a narrow window's
    # toolbar overflow takes it, as the others)
    act.setIconText("Label a Folder")
    toolbar = win.findChild(QToolBar, "main-toolbar")
    if toolbar is not None:
        toolbar.insertAction(win.act_train, act)
    win.act_label = act
    win.label_workspace = ws
    win.destroyed.connect(ws.shutdown)
    app = QApplication.instance()
    if app is not None:  # after the window's close stopped the jobs: answers still queued are kept
        app.aboutToQuit.connect(ws.keep_pending)
    return ws


def _model_trained(win, path: str) -> None:
    """A model saved by "Train now": listed in the picker (the current pick stays), said."""
    from pathlib import Path

    from cnndesk.core.common.safeio import display

    win.models.refresh_models(win.model_combo.currentData())
    win.status(f"Your model {display(Path(path).stem, 60)} is ready: \u201cUse it\u201d in the Label tab, "
               "or pick it in the model list", 8000)


def _use_model(win, path: str) -> None:
    """Classify with ``path``: select it in the model picker (which loads it)."""
    i = win.model_combo.findData(path)
    if i < 0:  # not listed yet (a model folder read meanwhile)
        win.models.refresh_models(path)
        i = win.model_combo.findData(path)
    if i < 0:
        win.status("That model cannot be found any more", 6000)
        return
    if win.model_combo.currentIndex() != i:
        win.model_combo.setCurrentIndex(i)  # the picker loads it
    win.status(f"Classifying with {win.model_combo.itemText(i)}", 6000)
