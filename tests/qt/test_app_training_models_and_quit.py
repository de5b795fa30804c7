"""The app around training and models: offline zoo picks, quitting or closing during training, retrain asking,
names and counts. Real windows offscreen; message boxes are answered by clicking their buttons."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from shapes import make_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def answer(text: str, log: list | None = None, delay: int = 50):
    """Click the button labelled ``text`` in the next modal message box (polls until it shows)."""

    def click():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            if log is not None:
                log.append(box.text())
            for b in box.buttons():
                if b.text().replace("&", "") == text:
                    b.click()
                    return
            raise AssertionError(f"no button {text!r} in {[b.text() for b in box.buttons()]}")
        QTimer.singleShot(delay, click)

    QTimer.singleShot(delay, click)


def test_offline_zoo_pick_reverts_without_saving_or_a_stuck_dialog(qtbot, window, monkeypatch):
    monkeypatch.setenv("CNNDESK_OFFLINE", "1")
    combo = window.model_combo
    zoo = next(i for i in range(combo.count()) if "download" in combo.itemText(i))
    zoo_key = combo.itemData(zoo)
    combo.setCurrentIndex(zoo)  # the user picks "EfficientNet-B0 — download 20 MB"
    qtbot.waitUntil(lambda: any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets()), timeout=20_000)
    box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
    assert "network" in box.text()
    qtbot.waitUntil(lambda: window.clf is not None, timeout=60_000)  # reverted to the default meanwhile
    assert combo.currentData() == "efficientnet-lite0" and window.spec.name == "efficientnet-lite0"
    assert window.settings.get("last_model") == "efficientnet-lite0" != zoo_key  # never remembered
    qtbot.wait(300)  # QProgressDialog's show-later timer would have fired by now
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QProgressDialog) and w.isVisible()]
    box.button(QMessageBox.StandardButton.Ok).click()  # OK works: nothing else is modal
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=5000)


def _dialog_with_data(qtbot, window, folder):
    dlg = window.show_training()
    dlg.folder.setText(str(folder))
    dlg.load_folder(str(folder))
    qtbot.waitUntil(lambda: dlg.dataset is not None and dlg.train_btn.isEnabled(), timeout=30_000)
    return dlg


def test_esc_during_training_asks_and_the_main_window_shows_it(qtbot, window, tmp_path, isolated_dirs, slow_head_fits):
    dlg = _dialog_with_data(qtbot, window, make_dataset(tmp_path / "d", (12, 12, 12)))
    dlg.advanced.setChecked(True)
    dlg.epochs.setValue(2000)
    dlg.start()
    qtbot.waitUntil(lambda: len(dlg.loss_chart.train) >= 1, timeout=60_000)
    assert window.training_badge.isVisible() and window.training_badge.text().startswith("Training")
    asked = []
    answer("Keep Training", asked)
    dlg.reject()  # what Esc does
    assert asked and "still running" in asked[0]
    assert dlg.isVisible() and dlg.running
    answer("Stop Training")
    dlg.reject()
    assert not dlg.isVisible() and not dlg.running
    qtbot.waitUntil(lambda: not window.training_badge.isVisible(), timeout=30_000)
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=30_000)  # answer the keep question if any
    assert dlg.progress.format().startswith("Stopped after")


def test_retrain_asks_first_and_names_follow_the_folder(qtbot, window, tmp_path, isolated_dirs):
    first = make_dataset(tmp_path / "shapes one", (10, 10, 10))
    dlg = _dialog_with_data(qtbot, window, first)
    assert dlg.name.text() == "shapes one"
    saved = []
    dlg.model_saved.connect(saved.append)
    dlg.start()
    qtbot.waitUntil(lambda: bool(saved), timeout=120_000)
    assert dlg.progress.format().startswith("Done in")
    asked = []
    answer("Cancel", asked)
    assert dlg.evaluation.retrain_btn.isEnabled()
    dlg.evaluation.retrain_btn.click()
    assert asked and "Train a new model" in asked[0] and not dlg.running
    dlg.evaluation.open_cell(0, 0)
    assert "true" in dlg.evaluation.cell_title.text()
    dlg.evaluation.set_evaluation(dlg.result.evaluation)  # what a new training shows
    assert dlg.evaluation.cell_title.text().startswith("Click a cell")
    # another folder: the suggested name follows it (a name the user typed would stay)
    second = make_dataset(tmp_path / "shapes two", (10, 10, 10))
    dlg.load_folder(str(second))
    qtbot.waitUntil(lambda: dlg.name.text() == "shapes two", timeout=30_000)
    dlg.name.setText("my own name")
    dlg.load_folder(str(first))
    qtbot.waitUntil(lambda: str(dlg.dataset.root).endswith("shapes one"), timeout=30_000)
    assert dlg.name.text() == "my own name"
    dlg.close()


def test_folder_summary_counts_only_the_files_that_were_classified(qtbot, window, photo_folder, samples):
    folder = photo_folder(4)
    for i in range(2):
        (folder / f"bad_{i}.jpg").write_bytes(b"not an image")
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: not window.runner.running("folder") and window.folder_panel.model.rowCount() == 6, timeout=60_000)
    assert window.folder_panel.summary().startswith("4 files classified, 2 could not be read")


def test_rename_onto_an_existing_name_is_refused(isolated_dirs, tmp_path):
    import pytest

    from cnndesk.core.common.errors import ModelError
    from cnndesk.core.common.paths import user_models_dir
    from cnndesk.core.models import manage
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    ds = scan(make_dataset(tmp_path / "x", (8, 8, 8)), val_split=0.25)
    model = train(ds, TrainConfig(mode="quick", epochs=300))
    m = model.metrics()
    assert m["epochs_run"] == 300 and 1 <= m["best_epoch"] <= m["epochs_run"]
    user_models_dir().mkdir(parents=True, exist_ok=True)
    a = model.save(user_models_dir() / "alpha.safetensors", name="alpha")
    b = model.save(user_models_dir() / "beta.safetensors", name="beta")
    with pytest.raises(ModelError, match="already exists"):
        manage.rename_model(b, "alpha")
    with pytest.raises(ModelError, match="already exists"):
        manage.rename_model(b, "ALPHA")
    assert a.exists() and b.exists()
    assert manage.rename_model(b, "gamma").name == "gamma.safetensors"


QUIT_SCRIPT = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QTimer
    from cnndesk.qt.app import create_app
    app = create_app()
    from cnndesk.qt.main_window import MainWindow
    win = MainWindow(); win.show(); win.start()
    app.aboutToQuit.connect(lambda: win.runner.drain())
    dlg = win.show_training()
    dlg.confirm_stop = lambda *a: True      # the user answers "Stop Training"
    dlg.load_folder(sys.argv[1])
    state = {"started": False}
    def tick():
        if dlg.dataset is not None and win.clf is not None and not state["started"]:
            state["started"] = True
            dlg.full.setChecked(True)
            dlg.advanced.setChecked(True)
            dlg.size.setValue(64); dlg.epochs.setValue(50)
            dlg.start()
        if state["started"] and len(dlg.loss_chart.train) >= 1:
            open(sys.argv[2], "a").write("closing during training\\n")
            win.close()
            return
        QTimer.singleShot(100, tick)
    QTimer.singleShot(100, tick)
    code = app.exec()
    open(sys.argv[2], "a").write(f"exited {code}\\n")
""")


def test_quitting_during_full_training_ends_the_process_and_keeps_the_model(tmp_path, isolated_dirs):
    from cnndesk.core.common import system

    data = make_dataset(tmp_path / "q", (8, 8, 8))
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    if not system.has_torch():
        return
    marks = tmp_path / "marks.txt"  # not stdout: the background ONNX export silences stdout while it runs
    proc = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, str(data), str(marks)], env=env, capture_output=True, text=True, timeout=240)
    text = marks.read_text() if marks.exists() else ""
    assert "closing during training" in text, proc.stderr[-2000:]
    assert proc.returncode == 0 and "exited 0" in text, proc.stderr[-2000:]
    models = list((isolated_dirs / "data" / "models").glob("*.safetensors"))
    assert len(models) == 1  # the best model so far was kept without a question
