"""Inside the CNN: a new heatmap run takes the previous heatmap off the screen and shows that it is
working until the new one arrives (an occlusion run takes seconds)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
from PIL import Image


def test_a_new_heatmap_run_clears_the_old_one_and_shows_it_is_busy(qtbot, monkeypatch, samples):
    from cnndesk.qt import jobs
    from cnndesk.qt.imaging import pil_to_qimage
    from cnndesk.qt.widgets.explain_panel import ExplainPanel
    from cnndesk.qt.workers import JobRunner

    img = Image.open(samples["coffee"]).convert("RGB").resize((96, 64))
    release = threading.Event()
    calls = []

    def slow_heatmap(job, explainer, classifier, source, method, class_index, opacity):
        calls.append(method)
        release.wait(20)
        return jobs.Heatmap(img, np.zeros((64, 96)), 1, pil_to_qimage(img))

    monkeypatch.setattr(jobs, "heatmap", slow_heatmap)
    runner = JobRunner()
    panel = ExplainPanel(runner)
    qtbot.addWidget(panel)
    panel.spec = SimpleNamespace(labels=["a", "b"])
    panel.classifier = object()
    panel.item = SimpleNamespace(source=img, path=None, name="coffee")
    panel.method.blockSignals(True)
    panel.method.setCurrentIndex(panel.method.findData("occlusion"))
    panel.method.blockSignals(False)
    panel.show()
    panel._heat_ready(jobs.Heatmap(img, np.zeros((64, 96)), 0, pil_to_qimage(img)))  # the last run's heatmap
    assert panel.view.has_image() and not panel.busy.isVisible()

    panel.compute_heat()
    assert not panel.view.has_image() and panel.result is None and not panel.save_btn.isEnabled()
    assert panel.busy.isVisible() and "Occlusion" in panel.busy_label.text()
    panel.grab().save("/tmp/cnndesk-explain-busy.png")
    release.set()
    qtbot.waitUntil(lambda: panel.view.has_image() and panel.result is not None, timeout=10_000)
    assert not panel.busy.isVisible() and panel.save_btn.isEnabled() and calls == ["occlusion"]
    runner.drain()
