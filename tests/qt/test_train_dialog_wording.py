"""The Train dialog's words: the model name comes from the dataset (not "train"), a typed name stays,
the time estimates are honest (quick mode from the image count, full mode capped by its budget),
the reason a training stopped early is said, and the curves have a numbered epoch axis."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from shapes import make_dataset  # noqa: E402

from cnndesk.core.training.config import EpochStats, TrainConfig  # noqa: E402
from cnndesk.qt.dialogs import train_text  # noqa: E402


@pytest.fixture
def dialog(train_dialog):
    """The dialog alone, without its dataset check (tests/qt/conftest.py)."""
    return train_dialog


def _load(qtbot, dlg, folder):
    dlg.folder.setText(str(folder))
    dlg.load_folder(str(folder))
    qtbot.waitUntil(lambda: dlg.dataset is not None and Path(dlg.dataset.root).name == Path(folder).name
                    and dlg.train_btn.isEnabled(), timeout=20_000)


def test_a_generic_folder_name_gives_the_parent_s_name(qtbot, dialog, tmp_path):
    _load(qtbot, dialog, make_dataset(tmp_path / "garden birds" / "train", (4, 4, 4)))
    assert dialog.name.text() == "garden birds"
    assert train_text.default_model_name(tmp_path / "pets" / "Images") == "pets"
    assert train_text.default_model_name(tmp_path / "pets") == "pets"


def test_an_auto_name_follows_the_folder_a_typed_one_stays(qtbot, dialog, tmp_path):
    _load(qtbot, dialog, make_dataset(tmp_path / "cats", (4, 4, 4)))
    assert dialog.name.text() == "cats"
    _load(qtbot, dialog, make_dataset(tmp_path / "dogs", (4, 4, 4)))
    assert dialog.name.text() == "dogs"  # filled in: replaced
    dialog.name.selectAll()
    qtbot.keyClicks(dialog.name, "my pets")
    _load(qtbot, dialog, make_dataset(tmp_path / "birds", (4, 4, 4)))
    assert dialog.name.text() == "my pets"  # typed: kept
    dialog.name.setText("set by the app")  # not the folder's name: stays too
    _load(qtbot, dialog, make_dataset(tmp_path / "owls", (4, 4, 4)))
    assert dialog.name.text() == "set by the app"
    dialog.name.clear()
    qtbot.keyClicks(dialog.name, "x")
    dialog.name.selectAll()
    qtbot.keyClick(dialog.name, Qt.Key.Key_Backspace)  # emptied by the user: filled in again
    _load(qtbot, dialog, make_dataset(tmp_path / "fish", (4, 4, 4)))
    assert dialog.name.text() == "fish"


def test_quick_mode_promises_a_time_from_the_image_count(qtbot, dialog, tmp_path):
    assert "seconds" not in dialog.quick.text()
    _load(qtbot, dialog, make_dataset(tmp_path / "shapes", (10, 10, 10)))
    text = dialog.quick.text()
    assert "30 images" in text and "seconds:" not in text
    lo, hi = train_text.quick_estimate(1000)
    assert hi >= 32  # the 32 s a reported run took is inside what the dialog says for that size
    assert "1,000 images" in train_text.quick_label(1000)


def test_time_left_never_exceeds_the_budget(dialog, monkeypatch):
    dialog._budget = 150.0
    dialog._t_steps = None
    clock = iter([100.0, 110.0])
    monkeypatch.setattr("cnndesk.qt.dialogs.train_dialog.time.perf_counter", lambda: next(clock))
    dialog._progress(0, 120, "Epoch 1/8")
    dialog._progress(3, 120, "Epoch 1/8")  # 10 s for 3 of 120 steps: the rate says 390 s
    fmt = dialog.progress.format()
    assert "about 140 s left" in fmt, fmt
    assert train_text.eta_seconds(10, 3, 120, 0) == pytest.approx(390)


def _model(mode, epochs_run, planned, cancelled=False, extra=None):
    hist = [EpochStats(e, planned, 1.0, 0.5, 1.0, [0.8, 0.9, 0.85, 0.84][min(e - 1, 3)], 5.0)
            for e in range(1, epochs_run + 1)]
    return SimpleNamespace(history=hist, mode=mode, cancelled=cancelled, config=TrainConfig(mode=mode),
                           extra=extra or {})


def test_why_a_training_stopped_is_said():
    early = train_text.stop_reason(_model("full", 3, 15))
    assert "3 of 15 epochs" in early and "early stopping" in early and "epoch 2" in early
    budget = train_text.stop_reason(_model("full", 4, 4, extra={"epochs": "4 epochs of 30 s fit the 150 s budget"}))
    assert "time budget" in budget and "150 s" in budget
    assert "Stopped by you" in train_text.stop_reason(_model("full", 2, 15, cancelled=True))
    assert train_text.stop_reason(_model("quick", 4, 4)) == ""


def test_the_saved_message_says_why_it_stopped(qtbot, dialog, tmp_path, monkeypatch):
    from cnndesk.qt.dialogs import train_dialog

    _load(qtbot, dialog, make_dataset(tmp_path / "shapes", (4, 4, 4)))
    model = _model("full", 3, 15)
    model.evaluation = None
    model.save = lambda target, name: target
    monkeypatch.setattr(train_dialog, "user_models_dir", lambda: tmp_path)
    dialog.save(model)
    assert "Stopped early after 3 of 15 epochs" in dialog.status.text()


def test_curves_have_a_numbered_epoch_axis(qtbot, tmp_path):
    from cnndesk.qt.widgets.charts import CurveChart

    c = CurveChart("Loss")
    qtbot.addWidget(c)
    c.clear(15)
    assert c.x_ticks() == [1, 5, 10, 15]
    c.clear(200)
    assert c.x_ticks()[0] == 1 and c.x_ticks()[-1] == 200 and len(c.x_ticks()) <= 7
    for e in range(1, 16):
        c.add(e, 1 / e, 1.2 / e)
    c.resize(400, 240)
    c.grab().save(str(tmp_path / "chart.png"))


def test_retrain_asks_with_an_honest_quick_time(qtbot, dialog, tmp_path, monkeypatch):
    from cnndesk.qt.dialogs import train_dialog

    _load(qtbot, dialog, make_dataset(tmp_path / "shapes", (10, 10, 10)))
    asked = []
    monkeypatch.setattr(train_dialog.QMessageBox, "exec", lambda box: asked.append(box.text()))
    assert dialog.retrain() is False  # nothing clicked: nothing starts
    assert "quick — about" in asked[0] and "30 images" in asked[0] and "seconds" not in asked[0]
