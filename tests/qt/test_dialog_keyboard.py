"""Keyboard use of the Sort and Train dialogs: mnemonics in the Sort dialog (Alt+M picks Move, it
does not type an "m"), Close on every page of the Train dialog, and a dataset-check move or an
evaluation relabel undone by the app's Edit ▸ Undo (Ctrl+Z), the pages following the files back."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from shapes import make_dataset  # noqa: E402


def _activate(qtbot, w):
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(lambda: w.isActiveWindow(), timeout=3000)


def test_sort_dialog_mnemonics_choose_instead_of_typing(qtbot, tmp_path):
    from cnndesk.qt.dialogs.sort_dialog import SortDialog

    dlg = SortDialog(str(tmp_path / "sorted"))
    qtbot.addWidget(dlg)
    _activate(qtbot, dlg)
    dlg.dest.setFocus()
    qtbot.keyClick(dlg.dest, Qt.Key.Key_M, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dlg.move.isChecked, timeout=2000)  # a mnemonic clicks after a short animation
    assert dlg.dest.text() == str(tmp_path / "sorted")
    qtbot.keyClick(dlg.move, Qt.Key.Key_O, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dlg.use_threshold.isChecked, timeout=2000)
    qtbot.keyClick(dlg.use_threshold, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dlg.copy.isChecked, timeout=2000)
    qtbot.keyClick(dlg.copy, Qt.Key.Key_D, Qt.KeyboardModifier.AltModifier)
    assert dlg.dest.hasFocus() and dlg.dest.text() == str(tmp_path / "sorted")
    dlg.grab().save(str(tmp_path / "sort.png"))


class _Host(QWidget):
    """Stands in for the main window: what the Train dialog takes from its parent is the undo."""

    def __init__(self, runner, journal):
        super().__init__()
        from cnndesk.qt.undo import UndoController

        self.undo = UndoController(runner, self, journal=journal)


@pytest.fixture
def host_dialog(qtbot, tmp_path, monkeypatch):
    from cnndesk.core.organize.journal import Journal
    from cnndesk.qt.dialogs.train_dialog import TrainDialog
    from cnndesk.qt.settings import Settings
    from cnndesk.qt.widgets.doctor_panel import DoctorPanel
    from cnndesk.qt.workers import JobRunner

    monkeypatch.setattr(DoctorPanel, "check", lambda self, *a, **k: False)  # its first run exports a model
    runner = JobRunner()
    host = _Host(runner, Journal(tmp_path / "journal.jsonl"))
    qtbot.addWidget(host)
    dlg = TrainDialog(Settings(), runner, host)
    yield dlg
    dlg.doctor.stop()
    runner.drain()


def test_close_is_on_every_page_of_the_train_dialog(qtbot, host_dialog):
    dlg = host_dialog
    _activate(qtbot, dlg)
    dlg.tabs.setTabEnabled(1, True)
    for i in range(dlg.tabs.count()):
        dlg.tabs.setCurrentIndex(i)
        assert dlg.close_btn.isVisible(), dlg.tabs.tabText(i)
    dlg.tabs.setCurrentWidget(dlg.doctor)
    qtbot.mouseClick(dlg.close_btn, Qt.MouseButton.LeftButton)
    assert not dlg.isVisible()


def test_ctrl_z_undoes_a_dataset_check_move(qtbot, host_dialog, tmp_path):
    from cnndesk.core.doctor import check as doctor
    from cnndesk.qt.widgets.doctor_panel import IssueRole

    dlg = host_dialog
    data = make_dataset(tmp_path / "shapes", (3, 3, 3))
    wrong = sorted((data / "circle").iterdir())[0]
    panel = dlg.doctor
    panel.root = str(data)
    panel.report = doctor.Report(str(data), [doctor.Issue("label", str(wrong), "circle", "square", reason="looks square")],
                                 {"images": 9})
    panel.populate(panel.report)
    _activate(qtbot, dlg)
    dlg.tabs.setCurrentWidget(panel)
    target = Path(panel.move_selected())
    assert target.parent.name == "square" and target.is_file() and not wrong.exists()
    item = panel.tree.currentItem()
    assert item.data(0, IssueRole + 1)  # marked as fixed
    assert dlg.parent().undo.action.isEnabled()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: wrong.is_file() and not target.exists(), timeout=5000)
    qtbot.waitUntil(lambda: not item.data(0, IssueRole + 1), timeout=5000)
    assert not panel.undo_btn.isEnabled() and panel.move_btn.isEnabled()
    # the panel's own Undo button and Ctrl+Z share one history: nothing is undone twice
    target = Path(panel.move_selected())
    panel.undo()
    assert wrong.is_file() and not target.exists()
    assert dlg.parent().undo.journal.last() is None


def test_undo_puts_a_fixed_mistake_back_on_the_evaluation_page(qtbot, host_dialog, tmp_path):
    from PIL import Image

    from cnndesk.core.training.evaluation import evaluate

    dlg = host_dialog
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
    paths = []
    for i, c in enumerate(["cat", "cat", "dog", "dog"]):
        p = tmp_path / c / f"{i}.jpg"
        Image.new("RGB", (32, 32), (i * 60, 0, 0)).save(p)
        paths.append(str(p))
    ev = evaluate(paths, [0, 0, 1, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]), ["cat", "dog"])
    view = dlg.evaluation
    view.set_evaluation(ev)
    before = [view.mistakes.item(i).text() for i in range(view.mistakes.count())]
    view.mistakes.setCurrentRow(0)
    target = view.fix_selected()
    assert target.is_file() and view.mistakes.count() == 1 and view.moved == 1
    assert dlg.parent().undo.undo()
    qtbot.waitUntil(lambda: Path(paths[1]).is_file(), timeout=5000)
    qtbot.waitUntil(lambda: view.mistakes.count() == 2, timeout=5000)
    assert [view.mistakes.item(i).text() for i in range(view.mistakes.count())] == before
    assert view.moved == 0
    qtbot.waitUntil(lambda: dlg.runner.active_count() == 0, timeout=5000)
