"""Trust in the app, offscreen: "Not one of my classes" in the verdict, the gallery and the folder
table, `_unknown` when sorting, the per-model setting in Preferences, the evaluation page's
calibration and flag rate, and full mode's chosen settings in the training dialog."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
import trust_data  # noqa: E402


@pytest.fixture(scope="module")
def symbols_model(tmp_path_factory, classifier):
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    root = tmp_path_factory.mktemp("trust-qt")
    data = trust_data.make_set(root / "symbols", "symbols", 12, 0)
    test = trust_data.make_set(root / "test", "symbols", 2, 5)
    unrelated = trust_data.make_unrelated(root / "unrelated", 6)
    model = train(scan(data, seed=0), TrainConfig(mode="quick"))
    return model, model.save(root / "symbols.safetensors"), test, unrelated


def _use_model(qtbot, window, path):
    window.models.load_model(str(path))
    qtbot.waitUntil(lambda: window.clf is not None and window.clf.spec.metadata.get("file") == str(path),
                    timeout=60_000)


def test_verdict_says_not_one_of_my_classes_then_follows_preferences(drop, qtbot, window, symbols_model, monkeypatch):
    _, path, test, unrelated = symbols_model
    _use_model(qtbot, window, path)
    assert window.clf.novelty is not None
    drop(window, [unrelated[1]])  # a portrait-like drawing
    qtbot.waitUntil(lambda: window.panel.headline.text() == "Not one of my classes", timeout=30_000)
    assert window.panel.detail.text().startswith("Confidence unknown: ")
    item = window.gallery_model.items[-1]
    assert item.prediction.unknown and window.gallery_model.data(window.gallery_model.index(
        len(window.gallery_model.items) - 1, 0)).startswith("Not mine")
    # one of its own kind of images: a normal verdict
    own = str(sorted((test / "star").iterdir())[0])
    drop(window, [own])
    qtbot.waitUntil(lambda: window.panel.headline.text() == "star", timeout=30_000)
    # Preferences: "never" for this model turns the flag off (per model, remembered)
    from cnndesk.qt.dialogs.preferences import PreferencesDialog

    dlg = PreferencesDialog(window.settings, window, model=window.clf)
    qtbot.addWidget(dlg)
    assert dlg.flag_rate.isEnabled() and dlg.flag_rate.value() == 5.0
    dlg.flag_rate.setValue(0)
    assert "never" in dlg.flag_note.text()
    dlg.accept()
    window.apply_preferences()
    assert window.settings.novelty_rate(window.clf.spec.name) == 0
    assert window.clf.novelty_threshold == float("inf")
    drop(window, [unrelated[1]])
    qtbot.waitUntil(lambda: window.panel.headline.text() not in ("Not one of my classes", "Classifying…", "star"),
                    timeout=30_000)
    # the built-in model: no per-model setting, explained
    builtin = PreferencesDialog(window.settings, window, model=None)
    qtbot.addWidget(builtin)
    assert not builtin.flag_rate.isEnabled() and "Not sure" in builtin.flag_note.text()


def test_sorting_puts_unrelated_images_in_unknown(qtbot, window, symbols_model, tmp_path):
    _, path, test, unrelated = symbols_model
    _use_model(qtbot, window, path)
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in unrelated[:3]:
        shutil.copy(p, folder)
    for p in sorted((test / "plus").iterdir())[:2]:
        shutil.copy(p, folder)
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: not window.runner.running("folder") and window.folder_panel.model.rowCount() == 5,
                    timeout=60_000)
    labels = [window.folder_panel.model.data(window.folder_panel.model.index(i, 2)) for i in range(5)]
    assert sum(str(x).startswith("Unknown (closest: ") for x in labels) == 3
    dest = tmp_path / "sorted"
    window.folder.run_sort(str(dest), "copy", None, confirm=False)
    qtbot.waitUntil(lambda: window.folder.last_sort_report is not None, timeout=10_000)
    assert len(list((dest / "_unknown").iterdir())) == 3
    assert len(list((dest / "plus").iterdir())) == 2


def test_evaluation_page_shows_calibration_and_flag_rate(qtbot, symbols_model):
    from cnndesk.qt.widgets.evaluation import EvaluationView

    model = symbols_model[0]

    class Runner:
        def start(self, *a, **k):
            pass

    view = EvaluationView(Runner())
    qtbot.addWidget(view)
    view.set_evaluation(model.evaluation)
    text = view.headline.text()
    assert "calibration error" in text and "Not one of my classes" in text
    assert view.reliability.ece is not None and sum(b["count"] for b in view.reliability.bins) == len(
        model.evaluation.y_true)
    view.resize(900, 600)
    assert not view.grab().isNull()


def test_training_dialog_shows_full_mode_choices(qtbot, window, tmp_path):
    data = trust_data.make_set(tmp_path / "symbols", "symbols", 3, 0)
    dlg = window.show_training()
    qtbot.addWidget(dlg)
    dlg.load_folder(str(data))
    qtbot.waitUntil(lambda: dlg.dataset is not None, timeout=20_000)
    assert dlg.full_choices.text() == ""  # quick mode selected
    if not dlg.full.isEnabled():
        pytest.skip("full mode needs PyTorch")
    dlg.full.setChecked(True)
    text = dlg.full_choices.text()
    assert "224 px" in text and "no mirroring" in text and "epochs" in text
    assert not dlg.aug_flip.isChecked()
    cfg = dlg.config()
    assert cfg.image_size is None and cfg.unfrozen_blocks is None and cfg.augment_flip is False
    dlg.close()
