"""The window never reads the models folder before its first paint: the folder (here a 20 MB
metadata header and broken quick models) is read on a worker, then listed; the remembered user
model is in the picker from the start."""

from __future__ import annotations

import threading

import numpy as np

from cnndesk.core.images.preprocess import Preprocess
from cnndesk.core.models import registry
from cnndesk.core.models.files import save_model_file


def test_the_models_folder_is_read_on_a_worker(qtbot, isolated_dirs, monkeypatch):
    from cnndesk.qt.app import create_app
    from cnndesk.qt.main_window import MainWindow

    folder = registry.user_models_dir()
    folder.mkdir(parents=True)
    pre = Preprocess(256, 224, (0.5,) * 3, (0.5,) * 3)
    tensors = {"head.weight": np.zeros((2, 1280), np.float32), "head.bias": np.zeros(2, np.float32)}
    for i in range(5):
        save_model_file(folder / f"broken{i}.safetensors", tensors, arch="timm:tf_efficientnet_lite0",
                        labels=["a", "b"], preprocess=pre, extra={"kind": "head", "base": "nowhere"})
    save_model_file(folder / "big.safetensors", tensors, arch="timm:tf_efficientnet_lite0", labels=["a", "b"],
                    preprocess=pre, extra={"kind": "head", "base": "nowhere", "training": {"x": "y" * (20 << 20)}})
    threads = []
    real = registry.user_model_entries
    monkeypatch.setattr(registry, "user_model_entries", lambda: (threads.append(threading.current_thread()), real())[1])
    create_app()
    win = MainWindow()
    qtbot.addWidget(win)
    assert threading.main_thread() not in threads  # nothing read the folder on the UI thread
    combo = win.model_combo
    qtbot.waitUntil(lambda: sum(combo.itemText(i).endswith("(unusable)") for i in range(combo.count())) == 6,
                    timeout=30_000)
    assert any(t is not threading.main_thread() for t in threads)
    win.close()
    assert win.runner.pool.waitForDone(5000)
