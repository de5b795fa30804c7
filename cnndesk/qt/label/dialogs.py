"""The Label workspace's small questions (a folder, a class name, where and how to write the
dataset, whether to write into a non-empty folder). Module functions, so tests replace them."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from cnndesk.core.common.safeio import display
from cnndesk.qt import file_dialogs

MODES = [("copy", "Copy the images (the folder stays as it is)"),
         ("move", "Move the images into the class folders"),
         ("link", "Link to the images (symbolic links, no copies)"),
         ("labels", "Only the labels file (labels.csv: path,label, for cnndesk label --labels)")]


def choose_folder(parent, title: str, start: str = "") -> str:
    return file_dialogs.choose_folder(parent, title, start or "")


def ask_class_name(parent, classes: list[str] | None = None, title: str = "New class") -> str | None:
    """A class name (typed, or one of ``classes``); None when cancelled."""
    if classes:
        name, ok = QInputDialog.getItem(parent, title, "Class:", classes, 0, True)
    else:
        name, ok = QInputDialog.getText(parent, title, "Name of the new class:")
    name = (name or "").strip()
    return name if ok and name else None


def ask_write(parent, start: str) -> tuple[str, str] | None:
    """(output folder, mode) or None."""
    dlg = QDialog(parent)
    dlg.setWindowTitle("Write the dataset")
    form = QFormLayout(dlg)
    row = QWidget()
    rl = QHBoxLayout(row)
    rl.setContentsMargins(0, 0, 0, 0)
    out = QLineEdit(start)
    browse = QPushButton("Choose\u2026")
    browse.clicked.connect(lambda: (d := choose_folder(dlg, "Write the dataset into", out.text())) and out.setText(d))
    rl.addWidget(out, 1)
    rl.addWidget(browse)
    form.addRow("Folder:", row)
    mode = QComboBox()
    for key, text in MODES:
        mode.addItem(text, key)
    form.addRow("How:", mode)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dlg.accept)
    buttons.rejected.connect(dlg.reject)
    form.addRow(buttons)
    if dlg.exec() != QDialog.DialogCode.Accepted or not out.text().strip():
        return None
    return out.text().strip(), mode.currentData()


def confirm_non_empty(parent, folder: str) -> bool:
    return _ask_yes(parent, "Folder not empty", f"{display(folder, 100)} already holds files. Write the class "
                    "folders into it anyway? Nothing there is overwritten.")


def confirm_replace(parent, path: str) -> bool:
    return _ask_yes(parent, "Replace the labels file", f"{display(path, 100)} already exists. Replace it with the "
                    "answers given here? Undo puts the old file back.")


def _ask_yes(parent, title: str, text: str) -> bool:
    """A warning with Yes / Cancel, Cancel the default, the text as plain text (a path is never HTML)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.setTextFormat(box.textFormat().PlainText)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes
