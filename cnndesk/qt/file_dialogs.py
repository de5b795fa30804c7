"""The app's file and folder pickers, fitted to the screen.

Qt's static ``QFileDialog.get…`` functions open Qt's own dialog where the desktop has no native one
(a bare X session, some tiling window managers): 632×408 logical px, taller than a 1280×720
screen at 200 % (640×360 logical), so its buttons were off the screen. These open the same
dialog (native where there is one: a dialog object uses the native one like the static
functions do) at no more than the screen's available area. Every picker in the app comes from
here (``tests/architecture/test_file_pickers.py`` keeps it so)."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QDialog, QFileDialog, QWidget

from cnndesk.qt.screen_fit import fit_to_screen


def _run(dialog: QFileDialog) -> list[str]:
    hint = dialog.sizeHint()
    fit_to_screen(dialog, max(hint.width(), dialog.width()), max(hint.height(), dialog.height()))
    try:
        return dialog.selectedFiles() if dialog.exec() == QDialog.DialogCode.Accepted else []
    finally:
        dialog.deleteLater()


def _dialog(parent: QWidget | None, title: str, start: str | None, name_filter: str = "") -> QFileDialog:
    """The dialog in ``start``: a folder, or a file whose folder it opens with the name selected
    (as the static functions take it)."""
    start = start or ""
    folder, name = start, ""
    if start and not os.path.isdir(start):
        folder, name = os.path.dirname(start), os.path.basename(start)
    dialog = QFileDialog(parent, title, folder, name_filter)
    dialog.setObjectName("cnndesk-file-dialog")
    if name:
        dialog.selectFile(name)
    return dialog


def choose_folder(parent: QWidget | None, title: str, start: str | None = "") -> str:
    """A folder, or "" when cancelled (as ``QFileDialog.getExistingDirectory``)."""
    d = _dialog(parent, title, start)
    d.setFileMode(QFileDialog.FileMode.Directory)
    d.setOption(QFileDialog.Option.ShowDirsOnly, True)
    return next(iter(_run(d)), "")


def open_files(parent: QWidget | None, title: str, start: str | None = "", name_filter: str = "") -> list[str]:
    """Existing files, or [] when cancelled (as ``QFileDialog.getOpenFileNames``)."""
    d = _dialog(parent, title, start, name_filter)
    d.setFileMode(QFileDialog.FileMode.ExistingFiles)
    return _run(d)


def open_file(parent: QWidget | None, title: str, start: str | None = "", name_filter: str = "") -> str:
    """An existing file, or "" when cancelled (as ``QFileDialog.getOpenFileName``)."""
    d = _dialog(parent, title, start, name_filter)
    d.setFileMode(QFileDialog.FileMode.ExistingFile)
    return next(iter(_run(d)), "")


def save_file(parent: QWidget | None, title: str, start: str | None = "", name_filter: str = "") -> str:
    """A file name to save as, or "" when cancelled (as ``QFileDialog.getSaveFileName``: asks
    before replacing an existing file)."""
    d = _dialog(parent, title, start, name_filter)
    d.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    d.setFileMode(QFileDialog.FileMode.AnyFile)
    return next(iter(_run(d)), "")
