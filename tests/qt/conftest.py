"""pytest-qt, offscreen. Settings are isolated (XDG_CONFIG_HOME in tests/conftest.py, cleared per
test); every test fails if worker threads are left running."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

# the labelling tests' generated folders and stand-in embeddings (label_data), for the Label tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "labelling"))
# imported now: test_doctor_panel puts bench/ (which has a label_data of its own) first on the path,
# and `pytest tests/qt` alone then gave the Label tests bench's module
import label_data  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _clean_settings(qapp):
    from PySide6.QtCore import QSettings

    QSettings("cnndesk", "cnndesk").clear()
    yield
    QSettings("cnndesk", "cnndesk").clear()


@pytest.fixture
def window(qtbot, classifier):
    """The main window, shown, with its model loaded (the ONNX export exists from `classifier`)."""
    from cnndesk.qt.app import create_app
    from cnndesk.qt.main_window import MainWindow

    create_app()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.clf is not None, timeout=60_000)
    yield win
    win.close()
    assert win.runner.pool.waitForDone(60_000)  # a job inside an ONNX export (the dataset check's) cannot stop midway
    assert win.runner.pool.activeThreadCount() == 0, "worker threads left running"
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("cnndesk-decode")]
    for t in threading.enumerate():
        if t.name.startswith("cnndesk-decode"):
            t.join(5)
    assert not [t for t in threading.enumerate() if t.name.startswith("cnndesk-decode")], leftovers


@pytest.fixture
def photo_folder(tmp_path, samples):
    """A folder of n small photos made from the samples (plus what a test adds)."""

    def make(n: int, name="photos", size=(320, 240)):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        srcs = [Image.open(p).convert("RGB") for p in samples.values()]
        for i in range(n):
            img = srcs[i % len(srcs)].resize(size)
            img.save(folder / f"img_{i:04d}.jpg", quality=85)
        return folder

    return make


@pytest.fixture
def drop():
    return _drop


def _drop(win, paths):
    """Simulate a drag-and-drop of local files onto the window (the mime data is kept alive)."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(win.width() / 2, win.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted()
    ev = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, ev)
    return mime


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item):
    """A training a test left running is stopped before pytest-qt closes the windows: closing a
    window during a training asks "Stop it?" in a modal box, which nobody answers in a test run
    (seen once in a full run: the whole suite waited at that box)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        from cnndesk.qt.dialogs.train_dialog import TrainDialog

        for w in app.topLevelWidgets():
            if isinstance(w, TrainDialog) and w.running:
                w.stop_for_quit()
    return (yield)


@pytest.fixture
def slow_head_fits(monkeypatch) -> None:
    """Each quick head fit pauses at its every-10-epochs report, so a training is surely still
    running when the test stops it (2,000 epochs of a 36-image head took about a second on a quiet
    machine: it could finish between the two questions); cancel is still checked every epoch."""
    import time

    from cnndesk.core.training import head

    fit = head.fit_linear

    def slow(*args, on_epoch=None, **kwargs):
        def report(h):
            time.sleep(0.05)
            if on_epoch is not None:
                on_epoch(h)

        return fit(*args, on_epoch=report, **kwargs)

    monkeypatch.setattr(head, "fit_linear", slow)


@pytest.fixture
def train_dialog(qtbot, monkeypatch):
    """The Train dialog alone, without its dataset check (its first run exports a model: minutes)."""
    from cnndesk.qt.dialogs.train_dialog import TrainDialog
    from cnndesk.qt.settings import Settings
    from cnndesk.qt.widgets.doctor_panel import DoctorPanel
    from cnndesk.qt.workers import JobRunner

    monkeypatch.setattr(DoctorPanel, "check", lambda self, *a, **k: False)
    runner = JobRunner()
    dlg = TrainDialog(Settings(), runner)
    qtbot.addWidget(dlg)
    yield dlg
    dlg.doctor.stop()
    runner.drain()


@pytest.fixture
def make_label_ws(qtbot):
    """Make a Label workspace, shown, with the fast stand-in embeddings
    (tests/core/labelling/label_data.fake_embed unless ``embed`` is given) and no duplicate check,
    on its own worker runner (an app started again); each is shut down and drained after."""
    from label_data import fake_embed

    from cnndesk.qt.label.workspace import LabelWorkspace
    from cnndesk.qt.workers import JobRunner

    made = []

    def make(embed=None, size=(1100, 700)):
        runner = JobRunner()
        w = LabelWorkspace(runner, embed=embed or fake_embed)
        w.duplicates = False
        qtbot.addWidget(w)
        w.resize(*size)
        w.show()
        made.append((w, runner))
        return w

    yield make
    for w, runner in made:
        w.shutdown()
        assert runner.drain(60_000)


@pytest.fixture
def label_ws(make_label_ws):
    """The Label workspace, shown at 1100x700 (:func:`make_label_ws`)."""
    return make_label_ws()


@pytest.fixture
def ws(label_ws):
    """The Label workspace of the Label tests."""
    return label_ws
