"""`cnndesk --selftest`: proves a build works end to end, offscreen. It classifies a bundled sample
photo with the default model and plays a bundled tiny video through the camera pipeline
(QMediaPlayer -> QVideoSink -> the live classifier); exit 0 only if both give the right answers."""

from __future__ import annotations

import os
import sys
import time

CATS = {"Egyptian cat", "tiger cat", "tabby", "Persian cat", "Siamese cat", "lynx"}


def run() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia.*=false")
    from cnndesk import __version__
    from cnndesk.core.common.paths import resource_path
    from cnndesk.core.predict.classifier import Classifier

    ok = True
    t0 = time.perf_counter()
    clf = Classifier()
    pred = clf.predict([resource_path("samples", "cat.jpg")])[0]
    good = pred.label in CATS
    ok &= good
    print(f"[{'ok' if good else 'FAIL'}] photo: cat.jpg -> {pred.label} ({pred.score:.0%}) on {clf.describe()}")

    from cnndesk.core.common import system

    if system.has_torch():  # the full flavour: PyTorch itself must work (training, Grad-CAM, export)
        try:
            tclf = Classifier(backend="torch", device="cpu")
            tpred = tclf.predict([resource_path("samples", "cat.jpg")])[0]
            good = tpred.label in CATS and tclf.backend == "torch"
            text = f"{tpred.label} ({tpred.score:.0%})"
        except Exception as exc:  # a broken bundle: say what is missing
            good, text = False, f"{type(exc).__name__}: {exc}"
        ok &= good
        print(f"[{'ok' if good else 'FAIL'}] PyTorch: cat.jpg -> {text}")

    from PySide6.QtCore import QCoreApplication, QElapsedTimer

    from cnndesk.qt.app import create_app

    app = create_app()  # noqa: F841  (first: it quiets Qt Multimedia's start-up logging)
    from cnndesk.qt.camera.panel import CameraPanel
    from cnndesk.qt.settings import Settings
    from cnndesk.qt.workers import JobRunner
    runner = JobRunner()
    panel = CameraPanel(Settings(), runner)
    panel.resize(640, 480)
    panel.show()  # offscreen: the preview really paints
    panel.set_classifier(clf)
    panel.open_video(str(resource_path("samples", "selftest.mp4")))
    clock = QElapsedTimer()
    clock.start()
    while panel.results_shown < 3 and clock.elapsed() < 20_000:
        QCoreApplication.processEvents()
        time.sleep(0.005)
    video = panel.view.prediction
    good = video is not None and video.label in ("espresso", "cup") and panel.view.frames_painted > 0
    ok &= good
    label = f"{video.label} ({video.score:.0%})" if video is not None else "nothing"
    print(f"[{'ok' if good else 'FAIL'}] video: selftest.mp4 through the camera pipeline -> {label}, "
          f"{panel.view.frames_painted} frames shown")
    panel.shutdown()
    runner.drain()
    print(f"cnndesk {__version__} self-test {'passed' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s"
          + (" (frozen build)" if getattr(sys, "frozen", False) else ""))
    return 0 if ok else 1
