"""Render the Label workspace offscreen to docs/screenshots/label.png (1280x720, by suggested
label) and label-small.png (760x480, one visual group) - part of `make screenshots`.

A generated pile of 120 grey symbols (tests/core/labelling/label_data.py), 30 of them answered;
the embeddings are that module's stand-in (12x12 thumbnails) so the picture does not depend on
downloaded weights."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT / "tests" / "core" / "labelling"))


def main() -> int:
    from label_data import CLASSES, draw, fake_embed
    from PySide6.QtCore import QCoreApplication, QElapsedTimer

    from cnndesk.qt.app import create_app
    from cnndesk.qt.label.workspace import LabelWorkspace
    from cnndesk.qt.workers import JobRunner

    app = create_app()  # noqa: F841  (keeps the QApplication alive)
    pile = Path(tempfile.mkdtemp(prefix="cnndesk-label-shots-")) / "pile"
    pile.mkdir()
    rng = random.Random(3)
    for kind in CLASSES:
        for i in range(30):
            draw(kind, rng, 96).save(pile / f"{kind}_{i:03d}.png")

    def wait(cond, ms=60_000):
        t = QElapsedTimer()
        t.start()
        while not cond() or t.elapsed() < 300:
            QCoreApplication.processEvents()
            if t.elapsed() > ms:
                raise SystemExit("timed out waiting for the workspace")

    runner = JobRunner()
    ws = LabelWorkspace(runner, embed=fake_embed)
    ws.duplicates = False
    ws.resize(1280, 720)
    ws.show()
    ws.open_folder(str(pile))
    wait(lambda: ws.session is not None and not ws.busy)
    for p in sorted(ws.paths)[::4]:
        ws._queue_op("answer", (ws.session.index(p), os.path.basename(p).split("_")[0]), False)
    ws._refresh_wanted = True
    ws._pump()
    wait(lambda: not ws.busy)
    ws.queue, ws.pos = [], 0  # a fresh batch of questions after the answers
    ws._refresh_wanted = True
    ws._pump()
    wait(lambda: not ws.busy)
    ws.by.setCurrentIndex(1)
    wait(lambda: len(ws.model.thumbs) >= 30, 30_000)
    ws.grab().save(str(OUT / "label.png"))
    ws.by.setCurrentIndex(0)
    ws.section.setCurrentIndex(2)
    ws.resize(760, 480)
    wait(lambda: len(ws.model.thumbs) >= 30, 30_000)
    ws.grab().save(str(OUT / "label-small.png"))
    print("wrote", OUT / "label.png", OUT / "label-small.png")
    ws.shutdown()
    runner.drain()
    return 0


if __name__ == "__main__":
    sys.exit(main())
