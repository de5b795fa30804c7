"""`cnndesk --selftest`: proves a build works end to end, offscreen. It classifies a bundled sample
photo with the default model, quick-trains a tiny model on generated pictures and classifies
with it (what the lite bundle lost once without anyone noticing), and plays a bundled tiny video
through the camera pipeline (QMediaPlayer -> QVideoSink -> the live classifier); exit 0 only if
all give the right answers."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

CATS = {"Egyptian cat", "tiger cat", "tabby", "Persian cat", "Siamese cat", "lynx"}
# two classes a frozen ImageNet network tells apart at once: stripes and dots, in random colours
QUICK_CLASSES = ("stripes", "dots")


def _draw(kind: str, rng, size: int = 96):
    from PIL import Image, ImageDraw

    bg = tuple(rng.randint(0, 255) for _ in range(3))
    fg = tuple((c + 128) % 256 for c in bg)
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    step = rng.randint(10, 16)
    for i in range(-size, 2 * size, step):
        if kind == "stripes":
            d.line([(i, 0), (i + size // 2, size)], fill=fg, width=step // 3)
        else:
            for j in range(step // 2, size, step):
                r = step // 4
                d.ellipse([i - r, j - r, i + r, j + r], fill=fg)
    return img


def quick_train_check(per_class: int = 8) -> tuple[bool, str]:
    """Quick-train a two-class model on generated pictures, save it, load it back and classify
    held-out pictures with it: the quick-training path of the app (multi-stage features, the
    head, the model file, a quick-trained classifier). (passed, one line saying what happened)."""
    import random

    from cnndesk.core.predict.classifier import Classifier
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import scan
    from cnndesk.core.training.dispatch import train

    rng = random.Random(0)
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-selftest-"))
    try:
        for kind in QUICK_CLASSES:
            (tmp / "data" / kind).mkdir(parents=True)
            for i in range(per_class):
                _draw(kind, rng).save(tmp / "data" / kind / f"{kind}{i}.png")
        tests = []
        for kind in QUICK_CLASSES:
            path = tmp / f"test-{kind}.png"
            _draw(kind, rng).save(path)
            tests.append((path, kind))
        model = train(scan(tmp / "data", seed=0), TrainConfig(mode="quick", epochs=60, seed=0))
        saved = model.save(tmp / "selftest.safetensors")
        clf = Classifier(str(saved))
        preds = clf.predict([p for p, _ in tests])
        good = all(pred.label == kind for pred, (_, kind) in zip(preds, tests, strict=True))
        text = ", ".join(f"{kind} -> {pred.label}" for pred, (_, kind) in zip(preds, tests, strict=True))
        return good, f"{text} on {clf.describe()}"
    except Exception as exc:  # a broken build: say what is missing
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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

    good, text = quick_train_check()
    ok &= good
    print(f"[{'ok' if good else 'FAIL'}] quick training: a 2-class model from generated pictures: {text}")

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
