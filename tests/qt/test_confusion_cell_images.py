"""The evaluation page's confusion matrix: a cell's images lay out cleanly on the first click (the
thumbnails arriving later used to draw over the captions), open on double-click and from a context
menu like files elsewhere in the app, and the cells can be reached from the keyboard."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt


@pytest.fixture
def view(qtbot, tmp_path):
    from PIL import Image

    from cnndesk.core.training.evaluation import evaluate
    from cnndesk.qt.widgets.evaluation import EvaluationView
    from cnndesk.qt.workers import JobRunner

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
    paths, truth = [], []
    for i in range(8):
        c = "cat" if i < 6 else "dog"
        p = tmp_path / c / f"a_rather_long_file_name_{i}.jpg"
        Image.new("RGB", (200, 120), (i * 30, 90, 200 - i * 20)).save(p)
        paths.append(str(p))
        truth.append(0 if c == "cat" else 1)
    probs = np.array([[0.2, 0.8]] * 5 + [[0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])  # five cats called dogs
    runner = JobRunner()
    v = EvaluationView(runner)
    qtbot.addWidget(v)
    v.set_evaluation(evaluate(paths, truth, probs, ["cat", "dog"]))
    v.resize(1000, 600)
    v.show()
    qtbot.waitExposed(v)
    yield v
    runner.drain()


def _rects(lst):
    return [lst.visualItemRect(lst.item(i)) for i in range(lst.count())]


def test_first_click_lays_out_thumbnails_and_captions_apart(qtbot, view, tmp_path):
    view.matrix.setCurrentCell(0, 1)
    qtbot.mouseClick(view.matrix.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.matrix.visualItemRect(view.matrix.item(0, 1)).center())
    assert view.images.count() == 5
    qtbot.waitUntil(lambda: all(not view.images.item(i).icon().isNull() for i in range(5)), timeout=10_000)
    qtbot.wait(50)
    rects = _rects(view.images)
    for i, a in enumerate(rects):
        assert a.height() >= 72 + view.images.fontMetrics().height(), a  # room for the picture and its caption
        for b in rects[i + 1:]:
            assert not a.intersects(b), (a, b)
    view.grab().save(str(tmp_path / "cell.png"))


def test_a_cell_s_images_open_on_double_click_and_from_a_menu(qtbot, view, monkeypatch):
    from cnndesk.qt.widgets import evaluation

    opened, menus = [], []
    monkeypatch.setattr(evaluation.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    monkeypatch.setattr(evaluation.EvaluationView, "_exec_menu",
                        staticmethod(lambda menu, at: menus.append([x.text() for x in menu.actions()])))
    view.open_cell(0, 1)
    item = view.images.item(0)
    rect = view.images.visualItemRect(item)
    qtbot.mouseClick(view.images.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # Qt 6's test
    qtbot.mouseDClick(view.images.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # double-click needs it
    assert opened == [item.toolTip()]
    view.images.customContextMenuRequested.emit(rect.center())
    assert menus and "Show in Folder" in menus[0] and "Copy Path" in menus[0]
    view.mistakes.setCurrentRow(0)
    r = view.mistakes.visualItemRect(view.mistakes.item(0))
    view.mistakes.customContextMenuRequested.emit(r.center())  # the mistakes are files too
    assert len(menus) == 2 and "Show in Folder" in menus[1]


def test_cells_are_reached_from_the_keyboard(qtbot, view):
    view.matrix.setFocus()
    view.matrix.setCurrentCell(0, 0)
    assert "true “cat”, predicted “cat”" in view.cell_title.text()
    qtbot.keyClick(view.matrix, Qt.Key.Key_Right)
    assert "true “cat”, predicted “dog”" in view.cell_title.text() and view.images.count() == 5
    qtbot.keyClick(view.matrix, Qt.Key.Key_Down)
    assert "true “dog”, predicted “dog”" in view.cell_title.text()
    assert view.matrix.focusPolicy() != Qt.FocusPolicy.NoFocus
