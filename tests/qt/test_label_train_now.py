"""The Label workspace's "Train now" (issue 22): a quick model straight from the labels so far (no
dataset folder), saved as a normal quick model (head, temperature, novelty detector) that the
main window lists and "Use it" selects; too few labels give a clear message and start nothing;
Stop saves nothing. The session's embeddings are the fast stand-in; training uses the real
network (the ONNX export of the test session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from label_data import make_pile


@pytest.fixture
def ws(isolated_dirs, label_ws):
    """The Label workspace, shown, with the fast stand-in embeddings (tests/qt/conftest.py)."""
    return label_ws


def _open_and_label(qtbot, ws, root, truth, per_class: dict[str, int]):
    before = ws.session
    ws.open_folder(str(root))  # the folder opened again: answers go to the new session, not the old one
    qtbot.waitUntil(lambda: ws.session is not None and ws.session is not before and ws.view is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not ws.busy, timeout=30_000)
    for cls, n in per_class.items():
        for path in [p for p, c in sorted(truth.items()) if c == cls][:n]:
            ws._queue_op("answer", (ws.session.index(path), cls), False)
    ws._pump()
    qtbot.waitUntil(lambda: not ws.busy, timeout=30_000)


def _models():
    from cnndesk.core.common.paths import user_models_dir

    d = user_models_dir()
    return sorted(d.glob("*.safetensors")) if d.is_dir() else []


def test_too_few_labels_say_so_and_start_nothing(qtbot, ws, tmp_path):
    truth = make_pile(tmp_path / "pile", per_class=5)
    _open_and_label(qtbot, ws, tmp_path / "pile", truth, {"disc": 3})
    ws.train_btn.click()  # waits for a refit the pause after the answers may have started (a loaded machine)
    qtbot.waitUntil(lambda: "at least two classes" in ws.messages[-1], timeout=30_000)
    assert "'disc'" in ws.messages[-1]
    _open_and_label(qtbot, ws, tmp_path / "pile", truth, {"disc": 3, "bar": 3, "ring": 1})
    ws.train_btn.click()
    qtbot.waitUntil(lambda: "at least 2 labelled images" in ws.train_status.text(), timeout=30_000)
    text = ws.train_status.text()
    assert "at least 2 labelled images" in text and "'ring' (1)" in text and "'disc'" not in text
    assert not ws.training.running and not ws.train_progress.isVisible() and _models() == []


def test_train_now_saves_a_normal_quick_model_and_stop_saves_nothing(qtbot, ws, tmp_path):
    from cnndesk.core.models.files import read_model_file_metadata
    from cnndesk.core.models.registry import get_spec, list_models

    truth = make_pile(tmp_path / "pile", per_class=6)
    _open_and_label(qtbot, ws, tmp_path / "pile", truth, {"disc": 5, "bar": 5, "ring": 4, "cross": 4})
    assert ws.train_mode.currentData() == "quick"
    # Stop while it runs: nothing saved, the row says so
    ws.train_btn.click()
    assert ws.training.running and ws.train_progress.isVisible() and ws.train_stop.isVisible()
    assert not ws.train_btn.isEnabled()
    ws.train_stop.click()
    assert ws.train_status.text() == "Training stopped; nothing was saved" and not ws.train_progress.isVisible()
    qtbot.waitUntil(lambda: ws.runner.active_count() == 0, timeout=60_000)
    assert _models() == []
    # Train now: a quick model from the 18 labels, saved and offered
    saved = []
    ws.model_trained.connect(saved.append)
    ws.train_btn.click()
    qtbot.waitUntil(lambda: bool(saved), timeout=180_000)
    path = Path(saved[0])
    assert _models() == [path] and path.stem == "pile-labels"
    assert "Saved" in ws.train_status.text() and ws.use_model_btn.isVisible() and ws.train_btn.isEnabled()
    used = []
    ws.use_model.connect(used.append)
    ws.use_model_btn.click()
    assert used == [str(path)]
    # the same kind of file Train a Model writes: a quick head, calibrated, with its novelty detector
    info = read_model_file_metadata(path)
    assert info["kind"] == "head" and info["features"] == "multi" and info["temperature"] > 0
    assert info.get("novelty2") and info["dataset"]["classes"] == ["bar", "cross", "disc", "ring"]
    spec = get_spec(str(path))
    assert spec.source == "user" and sorted(spec.labels) == ["bar", "cross", "disc", "ring"]
    assert any(s.weights.path == str(path) for s in list_models(include_user=True) if s.source == "user")
    # a second training never overwrites the first
    saved.clear()
    ws.train_btn.click()
    qtbot.waitUntil(lambda: bool(saved), timeout=180_000)
    assert len(_models()) == 2 and Path(saved[0]) != path


def test_the_window_lists_the_new_model_and_use_it_selects_it(qtbot, window, tmp_path, isolated_dirs):
    from cnndesk.core.common.paths import user_models_dir
    from cnndesk.core.labelling import training
    from cnndesk.core.training.config import TrainConfig

    truth = make_pile(tmp_path / "pile", per_class=4)
    ds = training.dataset_from_labels(tmp_path / "pile", truth)
    model = training.train_from_labels(ds, "quick", TrainConfig(epochs=20))
    path = training.save_model(model, "pile-labels")
    assert path.parent == user_models_dir()
    ws = window.label_workspace
    ws.model_trained.emit(str(path))
    assert window.model_combo.findData(str(path)) >= 0, "listed in the model picker"
    assert window.model_combo.currentData() != str(path), "the current model stays until asked"
    ws.use_model.emit(str(path))
    assert window.model_combo.currentData() == str(path)
    qtbot.waitUntil(lambda: window.models.clf is not None and window.models.spec.weights.path == str(path),
                    timeout=60_000)
