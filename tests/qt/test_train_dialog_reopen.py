"""The Train dialog after it was closed once: Enter in the folder field loads the folder (it never
closes the dialog), reopening finishes what the scan left, and a folder can be dropped on it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from shapes import make_dataset  # noqa: E402


@pytest.fixture
def dialog(train_dialog):
    """The dialog alone, without its dataset check (tests/qt/conftest.py)."""
    return train_dialog


def two_classes(root: Path) -> Path:
    """A dataset unlike the first one: two classes."""
    make_dataset(root, (5, 5, 5))
    shutil.rmtree(root / "triangle")
    return root


def _loaded(dlg, folder) -> bool:
    return dlg.dataset is not None and Path(dlg.dataset.root) == Path(folder) and dlg.train_btn.isEnabled()


def test_enter_after_close_and_reopen_loads_the_folder_and_keeps_the_dialog(qtbot, dialog, tmp_path):
    a = make_dataset(tmp_path / "first", (4, 4, 4))
    b = two_classes(tmp_path / "second")
    dialog.show()
    dialog.folder.setText(str(a))
    dialog.load_folder(str(a))
    qtbot.waitUntil(lambda: _loaded(dialog, a), timeout=20_000)
    dialog.close_btn.setFocus()
    qtbot.mouseClick(dialog.close_btn, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    dialog.show()
    dialog.activateWindow()
    dialog.close_btn.setFocus()  # focus comes back where it was: on Close
    dialog.folder.setFocus()
    dialog.folder.selectAll()
    qtbot.keyClicks(dialog.folder, str(b))
    qtbot.keyClick(dialog.folder, Qt.Key.Key_Return)
    assert dialog.isVisible(), "Enter in the folder field closed the dialog"
    assert not dialog.close_btn.isDefault() and not dialog.close_btn.autoDefault()
    qtbot.waitUntil(lambda: _loaded(dialog, b), timeout=20_000)
    assert dialog.classes.count() == 2 and dialog.status.text() == "Ready to train."


def test_reopening_after_closing_mid_scan_finishes_the_scan(qtbot, dialog, tmp_path):
    a = make_dataset(tmp_path / "first", (4, 4, 4))
    b = two_classes(tmp_path / "second")
    dialog.show()
    dialog.folder.setText(str(a))
    dialog.load_folder(str(a))
    qtbot.waitUntil(lambda: _loaded(dialog, a), timeout=20_000)
    dialog.folder.setText(str(b))
    dialog.load_folder(str(b))  # "Looking at the folder…" — and the dialog is closed before it answers
    dialog.close()
    qtbot.wait(300)
    dialog.show()
    qtbot.waitUntil(lambda: _loaded(dialog, b), timeout=20_000)
    assert dialog.status.text() == "Ready to train."
    assert dialog.classes.count() == 2  # the new folder's classes, not the old ones under the new path


def test_a_dropped_folder_is_loaded(qtbot, dialog, tmp_path):
    data = make_dataset(tmp_path / "dropped", (4, 4, 4))
    dialog.show()
    mime = QMimeData()  # kept in a variable: the events only borrow it
    mime.setUrls([QUrl.fromLocalFile(str(data))])
    pos = QPointF(dialog.width() / 2, dialog.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(dialog, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(dialog, drop)
    assert drop.isAccepted()
    assert dialog.folder.text() == str(data)
    qtbot.waitUntil(lambda: _loaded(dialog, data), timeout=20_000)


def test_a_dropped_file_is_refused(qtbot, dialog, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    dialog.show()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f))])
    enter = QDragEnterEvent(QPointF(10, 10).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(dialog, enter)
    assert not enter.isAccepted()
