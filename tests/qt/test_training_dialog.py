"""The training dialog and evaluation page, offscreen, end to end on a tiny generated dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from shapes import make_dataset  # noqa: E402


def test_train_dialog_end_to_end(qtbot, window, tmp_path, isolated_dirs):
    data = make_dataset(tmp_path / "my shapes", (15, 15, 15))
    dlg = window.show_training()
    qtbot.addWidget(dlg)
    dlg.folder.setText(str(data))
    dlg.load_folder(str(data))
    qtbot.waitUntil(lambda: dlg.dataset is not None, timeout=20_000)
    assert dlg.classes.count() == 3 and "circle — 15 images" in dlg.classes.item(0).text()
    assert dlg.name.text() == "my shapes" and dlg.train_btn.isEnabled()
    saved = []
    dlg.model_saved.connect(saved.append)
    dlg.train_btn.click()
    assert dlg.cancel_btn.isEnabled()
    qtbot.waitUntil(lambda: bool(saved), timeout=120_000)
    path = Path(saved[0])
    assert path.is_file() and path.parent == isolated_dirs / "data" / "models"
    assert len(dlg.loss_chart.train) == 20 and len(dlg.acc_chart.val) == 20  # live curves, every 10 epochs
    assert dlg.tabs.isTabEnabled(1)
    assert dlg.evaluation.headline.text().startswith("Validation accuracy")
    assert dlg.evaluation.matrix.rowCount() == 3 and dlg.evaluation.per_class.rowCount() == 3
    assert window.model_combo.findData(str(path.resolve())) >= 0 or window.model_combo.findData(str(path)) >= 0
    dlg.close()


def test_cancel_offers_to_keep_the_best_model(qtbot, window, tmp_path, isolated_dirs, monkeypatch, slow_head_fits):
    from cnndesk.qt.dialogs import train_dialog

    data = make_dataset(tmp_path / "d", (12, 12, 12))
    dlg = window.show_training()
    qtbot.addWidget(dlg)
    dlg.load_folder(str(data))
    qtbot.waitUntil(lambda: dlg.dataset is not None, timeout=20_000)
    asked = []
    monkeypatch.setattr(train_dialog.QMessageBox, "question", lambda *a: asked.append(a) or train_dialog.QMessageBox.StandardButton.Yes)
    saved = []
    dlg.model_saved.connect(saved.append)
    dlg.advanced.setChecked(True)
    dlg.epochs.setValue(2000)  # long enough to cancel in the middle
    dlg.start()
    # a fresh cache: the one-off multi-stage features export comes first (minutes on a busy 2-core CPU)
    qtbot.waitUntil(lambda: len(dlg.loss_chart.train) >= 2, timeout=300_000)
    dlg.cancel()
    qtbot.waitUntil(lambda: bool(saved), timeout=10_000)
    assert asked and dlg.result.cancelled and len(dlg.result.history) < 200
    dlg.close()


def test_evaluation_page_cells_and_fixing_a_label(qtbot, window, tmp_path):
    from PIL import Image

    from cnndesk.core.training.evaluation import evaluate
    from cnndesk.qt.widgets.evaluation import EvaluationView

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
    paths = []
    for i, c in enumerate(["cat", "cat", "dog", "dog"]):
        p = tmp_path / c / f"{i}.jpg"
        Image.new("RGB", (32, 32), (i * 60, 0, 0)).save(p)
        paths.append(str(p))
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    ev = evaluate(paths, [0, 0, 1, 1], probs, ["cat", "dog"])
    view = EvaluationView(window.runner)
    qtbot.addWidget(view)
    view.set_evaluation(ev)
    assert view.headline.text().startswith("Validation accuracy 50.0% on 4 images · calibration error ")
    assert "Not one of my classes" not in view.headline.text()  # no novelty scores in this evaluation
    assert view.matrix.item(0, 1).text() == "1" and view.mistakes.count() == 2
    assert "model says dog (80%)" in view.mistakes.item(0).text()  # the most confident mistake first
    view.open_cell(0, 1)
    assert view.images.count() == 1 and view.images.item(0).text() == "1.jpg"
    changed = []
    view.dataset_changed.connect(lambda: changed.append(1))
    view.mistakes.setCurrentRow(0)
    assert view.fix_class.currentText() == "dog"
    target = view.fix_selected()
    assert target == tmp_path / "dog" / "1.jpg" and target.is_file() and not Path(paths[1]).exists()
    assert changed and view.mistakes.count() == 1
    qtbot.waitUntil(lambda: window.runner.active_count() == 0, timeout=5000)


def test_models_dialog_lists_renames_and_exports(qtbot, window, tmp_path, isolated_dirs, monkeypatch):
    from cnndesk.core.common.paths import user_models_dir
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train
    from cnndesk.qt.dialogs import models_dialog

    data = make_dataset(tmp_path / "d", (10, 10, 10))
    train(scan(data), TrainConfig(mode="quick")).save(user_models_dir() / "shapes.safetensors")
    dlg = window.show_models()
    qtbot.addWidget(dlg)
    assert dlg.list.count() == 1 and "3 classes" in dlg.list.item(0).text()
    dlg.list.setCurrentRow(0)
    changed = []
    dlg.models_changed.connect(lambda: changed.append(1))
    monkeypatch.setattr(models_dialog.QInputDialog, "getText", lambda *a, **k: ("Shapes v2", True))
    dlg.do_rename()
    assert changed and (user_models_dir() / "Shapes v2.safetensors").is_file()
    assert window.model_combo.findText("Shapes v2 (yours)") >= 0
    dlg.list.setCurrentRow(0)
    exp = dlg.do_export()
    qtbot.addWidget(exp)
    names = [exp.formats.item(i).text().split(" — ")[0] for i in range(exp.formats.count())]
    from cnndesk.core.export.formats import FORMATS

    assert names == list(FORMATS) and names[:5] == ["onnx", "onnx-int8", "openvino", "torchscript", "pt2"]
    assert exp.chosen_format() == "onnx"
    out = tmp_path / "bundle"
    exp.folder.setText(str(out))
    opened = []
    monkeypatch.setattr("cnndesk.qt.dialogs.export_dialog.QDesktopServices.openUrl", lambda url: opened.append(url))
    exp.start()
    assert not exp.export_button.isEnabled() and exp.cancel_button.text() == "Cancel"
    qtbot.waitUntil(lambda: exp.report is not None, timeout=180_000)
    assert exp.report.ok and (out / "predict.py").is_file() and (out / "parity.json").is_file()
    assert "gives the app's answers" in exp.result.text() and exp.open_button.isEnabled()
    exp.open_folder()
    assert opened and opened[0].toLocalFile() == str(out)
    assert exp.folder.text() != str(out)  # the next export would not land on the same folder
    exp.grab().save(str(tmp_path / "export.png"))
    exp.close()
    dlg.close()


def test_dialog_defaults_come_from_train_config(qtbot, window, tmp_path):
    """One source of training defaults: the dialog's values, collapsed or opened, are TrainConfig's;
    a changed time budget reaches the config and the full-mode summary."""
    import trust_data

    from cnndesk.core.training.config import TrainConfig

    dlg = window.show_training()
    qtbot.addWidget(dlg)
    defaults = TrainConfig()
    assert dlg.config() == TrainConfig(device=dlg.settings.device)
    dlg.advanced.setChecked(True)  # opened but untouched: the same settings
    assert dlg.config() == TrainConfig(device=dlg.settings.device)
    assert dlg.batch.value() == defaults.batch_size and dlg.val_split.value() == round(defaults.val_split * 100)
    assert dlg.base.currentData() == defaults.base and dlg.budget.value() == int(defaults.time_budget_s)
    data = trust_data.make_set(tmp_path / "icons", "symbols", 3, 0, size=32)
    dlg.load_folder(str(data))
    qtbot.waitUntil(lambda: dlg.dataset is not None, timeout=20_000)
    if not dlg.full.isEnabled():
        pytest.skip("full mode needs PyTorch")
    dlg.full.setChecked(True)
    assert "224 px" in dlg.full_choices.text() and "as many epochs as fit 150 s" in dlg.full_choices.text()
    dlg.budget.setValue(60)
    assert dlg.config().time_budget_s == 60 and "fit 60 s" in dlg.full_choices.text()
    dlg.resize(760, 900)
    dlg.grab().save(str(tmp_path / "train_dialog.png"))
    dlg.close()


def test_enter_in_the_folder_field_loads_it_without_opening_the_file_dialog(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt

    from cnndesk.qt import file_dialogs

    opened = []
    monkeypatch.setattr(file_dialogs, "choose_folder", lambda *a, **k: opened.append(a) or "")
    data = make_dataset(tmp_path / "shapes", per_class=(6, 6, 6))
    dlg = window.show_training()
    qtbot.addWidget(dlg)
    dlg.folder.clear()
    dlg.folder.setFocus()
    qtbot.keyClicks(dlg.folder, str(data))
    qtbot.keyClick(dlg.folder, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dlg.dataset is not None, timeout=20_000)
    assert opened == []
    dlg.close()


def test_the_curves_end_as_the_kept_fits(qtbot, window, tmp_path, monkeypatch):
    """Quick training draws the default weight decay's epochs live; when another is kept the
    curves are redrawn from the kept fit, so they agree with the accuracy in the status line."""
    from cnndesk.core.training import head

    # 72 training images: the default 1e-2 memorises them (val acc about 28 %), 0.1 generalises
    monkeypatch.setattr(head, "WEIGHT_DECAYS", (1e-2, 1e-1))
    data = make_dataset(tmp_path / "small shapes", (30, 30, 30), size=64)
    dlg = window.show_training()
    qtbot.addWidget(dlg)
    dlg.load_folder(str(data))
    qtbot.waitUntil(lambda: dlg.dataset is not None, timeout=20_000)
    saved = []
    dlg.model_saved.connect(saved.append)
    live = []
    show_epoch = dlg._epoch
    dlg._epoch = lambda s: (live.append(s.val_acc), show_epoch(s))
    dlg.start()
    qtbot.waitUntil(lambda: bool(saved), timeout=300_000)
    kept = dlg.result.history
    assert dlg.result.config.weight_decay == 0.1
    assert dlg.acc_chart.val == [(h.epoch, h.val_acc) for h in kept]
    assert dlg.loss_chart.train == [(h.epoch, h.train_loss) for h in kept]
    assert len(live) == 20 and max(live) < 0.6 < kept[-1].val_acc  # the live curve was the other fit's
    assert f"validation accuracy {dlg.result.evaluation.accuracy:.1%}" in dlg.status.text()
    dlg.close()
