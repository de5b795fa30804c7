"""Folder results: a move sort is undone with Ctrl+Z (also after a restart), the table follows
the files, a second sort does not re-read sorted/, Export and Sort act on what the filter shows,
and the filter does not carry over to the next folder."""

from __future__ import annotations

import csv
import os

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox


def _open(qtbot, win, folder, n):
    win.open_paths([str(folder)])
    qtbot.waitUntil(lambda: not win.runner.running("folder") and win.folder_panel.model.rowCount() == n, timeout=60_000)


def _sorted(qtbot, win):
    win.folder.last_sort_report = None
    qtbot.waitUntil(lambda: win.folder.last_sort_report is not None, timeout=20_000)
    return win.folder.last_sort_report


def test_move_sort_then_ctrl_z_and_no_rereading(qtbot, window, photo_folder):
    folder = photo_folder(6)
    (folder / "sub").mkdir()
    os.replace(folder / "img_0005.jpg", folder / "sub" / "img_0005.jpg")
    _open(qtbot, window, folder, 6)
    panel = window.folder_panel
    assert panel.model.index(5, 1).data() == os.path.join("sub", "img_0005.jpg")  # relative paths
    before = sorted(p.relative_to(folder) for p in folder.rglob("*.jpg"))
    dest = folder / "sorted"
    window.folder.run_sort(str(dest), "move", None, confirm=False)
    rep = _sorted(qtbot, window)
    assert len(rep.done) == 6 and not (folder / "sub").exists()  # emptied subfolder removed
    assert all(os.path.exists(r.path) and "sorted" in r.path for r in panel.model.rows)  # table follows
    assert window.undo.action.isEnabled() and "Move 6 files" in window.undo.action.text()

    # opening the folder again does not read the sorted files as its own
    _open(qtbot, window, folder, 0)
    qtbot.wait(200)
    assert panel.model.rowCount() == 0 and panel.skipped_sorted

    # Ctrl+Z, as a user presses it
    for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]:
        box.button(QMessageBox.StandardButton.Ok).click()  # the "Sorted" summary, as the user closes it
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    panel.table.setFocus()
    QTest.keyClick(panel.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.runner.running("undo") and sorted(p.relative_to(folder) for p in folder.rglob("*.jpg")) == before, timeout=20_000)
    assert not dest.exists()
    assert all(os.path.exists(r.path) for r in panel.model.rows)


def test_undo_survives_a_restart(qtbot, window, photo_folder):
    from cnndesk.qt.main_window import MainWindow

    folder = photo_folder(3)
    _open(qtbot, window, folder, 3)
    window.folder.run_sort(str(folder / "sorted"), "move", None, confirm=False)
    _sorted(qtbot, window)
    assert not list(folder.glob("*.jpg"))
    second = MainWindow()  # a new run of the app, same journal file
    qtbot.addWidget(second)
    assert second.undo.action.isEnabled()
    second.undo.action.trigger()
    qtbot.waitUntil(lambda: len(list(folder.glob("*.jpg"))) == 3, timeout=20_000)
    second.close()
    assert second.runner.pool.waitForDone(5000)


def test_second_copy_sort_reports_clashes(qtbot, window, photo_folder):
    folder = photo_folder(4)
    _open(qtbot, window, folder, 4)
    dest = str(folder / "sorted")
    plan = window.folder.sort_plan(dest, None)
    assert "namesake" not in window.folder.describe_plan(plan, "copy")
    window.folder.run_sort(dest, "copy", None, confirm=False)
    _sorted(qtbot, window)
    text = window.folder.describe_plan(window.folder.sort_plan(dest, None), "copy")
    assert "4 files already have a namesake there" in text
    window.folder.run_sort(dest, "copy", None, confirm=False)
    assert _sorted(qtbot, window).renamed == 4


def test_export_and_sort_follow_the_filter_and_it_resets_per_folder(qtbot, window, photo_folder, tmp_path):
    folder = photo_folder(10)
    _open(qtbot, window, folder, 10)
    panel = window.folder_panel
    label = panel.model.rows[0].prediction.label
    panel.label_filter.setEditText(label)
    shown = panel.proxy.rowCount()
    assert 0 < shown < 10
    assert panel.shown.text() == f"{shown} of 10 shown"
    assert f"{shown} of 10 shown" in panel.summary()
    out = tmp_path / "out.csv"
    assert window.folder.export_to(str(out), "csv") == shown
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == shown and all(r["label_1"] == label for r in rows)
    plan = window.folder.sort_plan(str(tmp_path / "s"), None)
    assert len(plan.moves) == shown and f"Only the {shown} files the filter shows" in window.folder.describe_plan(plan, "copy")
    panel.min_conf.setValue(50)
    other = photo_folder(3, name="other")
    _open(qtbot, window, other, 3)
    assert panel.proxy.rowCount() == 3 and panel.min_conf.value() == 0 and panel.label_filter.currentText() == ""
    assert panel.shown.text() == "3 files"
