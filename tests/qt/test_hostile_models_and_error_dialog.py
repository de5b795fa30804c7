"""Hostile model files and unexpected errors in the app: hostile model files do not stop the start and are listed as unusable; an
unexpected error shows a dialog with the plain reason, "Copy details" and a log file; closing the
training dialog while the head is fitted pops no late modal."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.hostile import make_corpus, runtime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from shapes import make_dataset  # noqa: E402


@pytest.fixture
def hostile_models(tmp_path, monkeypatch):
    """Set before the window exists (request it before `window`)."""
    monkeypatch.setenv("CNNDESK_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "data" / "models"
    folder.mkdir(parents=True)
    for p in (runtime.CORPUS / "models").iterdir():
        shutil.copy(p, folder / p.name)
    runtime.fifo(folder / "fifo.safetensors")
    return folder


def test_app_starts_with_hostile_model_files_and_lists_them(qtbot, hostile_models, window, tmp_path):
    combo = window.model_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    unusable = [i for i, t in enumerate(texts) if t.endswith("(unusable)")]
    assert len(unusable) == len(make_corpus.EXPECT_MODELS) + 1
    for i in unusable:
        assert not combo.model().item(i).isEnabled()
        assert combo.itemData(i, 3)  # the reason as tooltip (Qt.ToolTipRole == 3)
    i = texts.index("deep_json (unusable)")
    assert "nested" in combo.itemData(i, 3)
    assert combo.model().item(combo.currentIndex()).isEnabled()
    assert window.clf is not None  # the default model loaded
    dlg = window.show_models()
    qtbot.addWidget(dlg)
    rows = [dlg.list.item(i).text() for i in range(dlg.list.count())]
    assert sum("unusable:" in r for r in rows) == len(unusable)
    window.grab().save(str(tmp_path / "picker.png"))
    dlg.close()


def test_error_dialog_plain_reason_copy_details_and_log(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication

    from cnndesk.qt import crash_dialog

    monkeypatch.setenv("CNNDESK_DATA_DIR", str(tmp_path))
    try:
        raise OSError(28, "No space left on device", "/media/usb/results.csv")
    except OSError as exc:
        error = exc
    log = crash_dialog.crash.log_exception(error)
    dlg = crash_dialog.ErrorDialog(error, log)
    qtbot.addWidget(dlg)
    assert dlg.text().startswith("/media/usb/results.csv: the disk is full")
    assert "Traceback" not in dlg.text() and str(tmp_path / "logs" / "cnndesk.log") in dlg.informativeText()
    assert "OSError" in dlg.details_text and "Traceback" in dlg.details_text
    dlg.show()
    dlg.copy_button.click()
    assert QApplication.clipboard().text() == dlg.details_text and dlg.isVisible()
    assert "No space left" in log.read_text()
    dlg.grab().save(str(tmp_path / "error-dialog.png"))
    dlg.close()


def test_uncaught_exceptions_reach_the_dialog(qtbot, tmp_path, monkeypatch):
    from cnndesk.qt import crash_dialog

    monkeypatch.setenv("CNNDESK_DATA_DIR", str(tmp_path))
    shown = []
    monkeypatch.setattr(crash_dialog.ErrorDialog, "exec", lambda self: shown.append(self.text()) or 0)
    old_hook, old_thread_hook = sys.excepthook, __import__("threading").excepthook
    try:
        crash_dialog.install()
        try:
            raise ValueError("a bug somewhere")
        except ValueError:
            sys.excepthook(*sys.exc_info())
        qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    finally:
        sys.excepthook = old_hook
        __import__("threading").excepthook = old_thread_hook
    assert shown == ["ValueError: a bug somewhere"]
    assert "a bug somewhere" in (tmp_path / "logs" / "cnndesk.log").read_text()


def test_closing_the_training_dialog_while_fitting_pops_no_modal(qtbot, window, tmp_path, isolated_dirs, monkeypatch,
                                                                slow_head_fits):
    from cnndesk.qt.dialogs import train_dialog

    data = make_dataset(tmp_path / "d", (12, 12, 12))
    dlg = window.show_training()
    qtbot.addWidget(dlg)
    dlg.load_folder(str(data))
    qtbot.waitUntil(lambda: dlg.dataset is not None, timeout=20_000)
    asked, saved = [], []
    monkeypatch.setattr(train_dialog.QMessageBox, "question", lambda *a: asked.append(a) or train_dialog.QMessageBox.StandardButton.Yes)
    dlg.model_saved.connect(saved.append)
    dlg.advanced.setChecked(True)
    dlg.epochs.setValue(3000)
    dlg.start()
    qtbot.waitUntil(lambda: len(dlg.loss_chart.train) >= 2, timeout=60_000)  # fitting the head
    stop_asked = []

    def answer_stop(*a):  # the real box is shown only while a training runs; the user says "Stop"
        if dlg.running:
            stop_asked.append(a)
        return True

    monkeypatch.setattr(dlg, "confirm_stop", answer_stop)
    dlg.close()
    qtbot.waitUntil(lambda: window.runner.active_count() == 0, timeout=20_000)
    qtbot.wait(200)
    # asked once, up front (issue 14: closing while training asks); never a late modal afterwards;
    # the best model so far is kept, as the up-front question said
    assert len(stop_asked) == 1 and not asked
    assert len(saved) == 1 and len(list((isolated_dirs / "data" / "models").glob("*.safetensors"))) == 1
