"""Render the main states of the app offscreen to docs/screenshots/*.png (`make screenshots`)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
_tmp = Path(tempfile.mkdtemp(prefix="cnndesk-shots-"))
os.environ["XDG_CONFIG_HOME"] = str(_tmp / "config")  # fresh settings, not the user's


def main() -> int:
    from PIL import Image
    from PySide6.QtCore import QCoreApplication, QElapsedTimer

    from cnndesk.core.common.paths import sample_images
    from cnndesk.qt.app import create_app
    from cnndesk.qt.main_window import MainWindow

    app = create_app()  # noqa: F841  (keeps the QApplication alive)
    OUT.mkdir(parents=True, exist_ok=True)

    def wait(cond, ms=60_000):
        t = QElapsedTimer()
        t.start()
        while not cond():
            QCoreApplication.processEvents()
            if t.elapsed() > ms:
                raise SystemExit("timed out waiting for the app")

    def shot(widget, name):
        for _ in range(5):
            QCoreApplication.processEvents()
        widget.grab().save(str(OUT / f"{name}.png"))
        print("wrote", OUT / f"{name}.png")

    win = MainWindow()
    win.resize(1180, 780)
    win.show()
    win.start()
    wait(lambda: win.clf is not None)
    win.message.clear()
    shot(win, "empty")

    samples = [str(p) for p in sample_images()]
    bad = _tmp / "holiday-photo.jpg"
    bad.write_bytes(Path(samples[0]).read_bytes()[:4000])
    win.open_paths(samples + [str(bad)])
    wait(lambda: all(i.prediction or i.error for i in win.gallery_model.items) and len(win.gallery_model.items) == len(samples) + 1)
    coffee = next(i for i, it in enumerate(win.gallery_model.items) if it.name == "coffee.jpg")
    win.gallery.setCurrentIndex(win.gallery_model.index(coffee))
    shot(win, "result")
    win.gallery.setCurrentIndex(win.gallery_model.index(len(samples)))
    shot(win, "error-badge")

    folder = _tmp / "camera-roll"
    folder.mkdir()
    srcs = [Image.open(p).convert("RGB") for p in samples]
    for i in range(60):
        srcs[i % len(srcs)].rotate((i * 7) % 30 - 15).save(folder / f"IMG_{4100 + i}.jpg", quality=85)
    (folder / "IMG_4199.jpg").write_bytes(b"")
    win.open_paths([str(folder)])
    wait(lambda: not win.runner.running("folder") and win.folder_panel.model.rowCount() == 61)
    win.folder_panel.uncertain.click()
    shot(win, "folder")

    # inside the CNN: Grad-CAM on the espresso, feature maps of a middle stage, the filters
    win.gallery.setCurrentIndex(win.gallery_model.index(coffee))
    win.show_explain()
    panel = win.explain_panel
    wait(lambda: panel.result is not None)
    panel.layers.setCurrentRow(4)
    wait(lambda: len(panel.maps.tiles) > 0 and win.runner.active_count() == 0)
    shot(win, "explain")
    panel.side.setCurrentIndex(1)
    shot(win, "filters")
    panel.side.setCurrentIndex(2)
    shot(win, "summary")
    panel.side.setCurrentIndex(0)

    # the camera tab: no camera here, then a video file playing through the camera pipeline
    win.show_camera()
    shot(win, "camera-empty")
    import av
    import numpy as np

    clip = _tmp / "clip.mp4"
    arr = np.asarray(Image.open(samples[2]).convert("RGB").resize((640, 480)))
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("h264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(150):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.roll(arr, i, axis=1), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    win.camera_panel.set_dataset(str(_tmp / "dataset"))
    win.camera_panel.class_combo.setEditText("espresso")
    win.camera_panel.open_video(str(clip))
    wait(lambda: win.camera_panel.results_shown > 40)
    shot(win, "camera")
    win.camera_panel.source.stop()

    # training on a generated dataset, then its evaluation page
    sys.path.insert(0, str(ROOT / "tests" / "core"))
    from shapes import make_dataset

    data = make_dataset(_tmp / "shapes", (30, 30, 30), size=128)
    os.environ["CNNDESK_DATA_DIR"] = str(_tmp / "data")
    dlg = win.show_training()
    dlg.folder.setText(str(data))
    dlg.load_folder(str(data))
    wait(lambda: dlg.dataset is not None)
    saved = []
    dlg.model_saved.connect(saved.append)
    dlg.start()
    wait(lambda: bool(saved))
    shot(dlg, "train")
    dlg.tabs.setCurrentIndex(1)
    dlg.evaluation.open_cell(0, 0)
    wait(lambda: win.runner.active_count() == 0)
    shot(dlg, "evaluation")
    dlg.close()

    # the same result under a dark system palette (custom-painted widgets follow the palette)
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    light = QApplication.palette()
    dark = QPalette()
    for role, color in (("Window", "#2b2d30"), ("WindowText", "#e8e8e8"), ("Base", "#1e1f22"),
                        ("AlternateBase", "#26282b"), ("Text", "#e8e8e8"), ("Button", "#3a3c40"),
                        ("ButtonText", "#e8e8e8"), ("Highlight", "#4f8ff7"), ("HighlightedText", "#ffffff"),
                        ("Mid", "#5a5d63"), ("ToolTipBase", "#2b2d30"), ("ToolTipText", "#e8e8e8")):
        dark.setColor(getattr(QPalette.ColorRole, role), QColor(color))
    QApplication.setStyle("Fusion")
    QApplication.setPalette(dark)
    win.tabs.setCurrentIndex(0)
    win.gallery.setCurrentIndex(win.gallery_model.index(coffee))
    shot(win, "result-dark")
    QApplication.setPalette(light)

    from cnndesk.qt.dialogs.preferences import PreferencesDialog

    dlg = PreferencesDialog(win.settings, win)
    dlg.show()
    shot(dlg, "preferences")
    dlg.close()
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
