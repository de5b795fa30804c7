"""Render every window on a small screen (1280×720) and on a high-DPI one (1600×1000 at
QT_SCALE_FACTOR=2, i.e. 800×500 logical px), offscreen, to docs/screenshots/<tag>-*.png, and
report windows that do not fit the screen.

    python scripts/screens_small.py small      # 1280×720, scale 1
    python scripts/screens_small.py hidpi      # 1600×1000, QT_SCALE_FACTOR=2
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
SCREENS = {"small": (1280, 720, "1"), "hidpi": (1600, 1000, "2")}


def setup(tag: str) -> Path:
    w, h, scale = SCREENS[tag]
    tmp = Path(tempfile.mkdtemp(prefix="cnndesk-small-"))
    cfg = tmp / "screen.json"
    cfg.write_text(json.dumps({"screens": [{"name": "s", "x": 0, "y": 0, "width": w, "height": h,
                                            "logicalDpi": 96, "logicalDpiX": 96, "logicalDpiY": 96, "dpr": 1}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={cfg}"
    os.environ["QT_SCALE_FACTOR"] = scale
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    os.environ.setdefault("CNNDESK_DATA_DIR", str(tmp / "data"))
    return tmp


def main(tag: str) -> int:
    tmp = setup(tag)
    from PySide6.QtCore import QCoreApplication, QElapsedTimer

    from cnndesk.core.common.paths import sample_images
    from cnndesk.qt.app import create_app
    from cnndesk.qt.main_window import MainWindow

    app = create_app()
    avail = app.primaryScreen().availableGeometry()
    print(f"{tag}: screen {avail.width()}×{avail.height()} logical px, dpr {app.primaryScreen().devicePixelRatio()}")
    OUT.mkdir(parents=True, exist_ok=True)
    problems = []

    def wait(cond, ms=90_000):
        t = QElapsedTimer()
        t.start()
        while not cond():
            QCoreApplication.processEvents()
            if t.elapsed() > ms:
                raise SystemExit("timed out waiting for the app")

    def shot(widget, name):
        for _ in range(5):
            QCoreApplication.processEvents()
        g = widget.frameGeometry()
        hint = widget.minimumSizeHint()
        fits = g.width() <= avail.width() and g.height() <= avail.height()
        needs = hint.width() <= avail.width() and hint.height() <= avail.height()
        if not (fits and needs):
            problems.append(f"{name}: window {g.width()}×{g.height()}, needs at least {hint.width()}×{hint.height()}")
        widget.grab().save(str(OUT / f"{tag}-{name}.png"))
        print(f"wrote {tag}-{name}.png  window {g.width()}×{g.height()}  minimum {hint.width()}×{hint.height()}")

    win = MainWindow()
    win.show()
    win.start([str(p) for p in sample_images()])
    wait(lambda: win.clf is not None and all(i.prediction or i.error for i in win.gallery_model.items))
    win.gallery.setCurrentIndex(win.gallery_model.index(2))
    shot(win, "main")
    folder = tmp / "photos"
    folder.mkdir()
    for p in sample_images():
        (folder / p.name).write_bytes(p.read_bytes())
    win.open_paths([str(folder)])
    wait(lambda: not win.runner.running("folder") and win.folder_panel.model.rowCount() == 5)
    shot(win, "folder")

    sys.path.insert(0, str(ROOT / "tests" / "core"))
    from shapes import make_dataset

    data = make_dataset(tmp / "shapes", (12, 12, 12))
    dlg = win.show_training()
    dlg.folder.setText(str(data))
    dlg.load_folder(str(data))
    wait(lambda: dlg.dataset is not None)
    dlg.advanced.setChecked(True)
    shot(dlg, "train")
    saved = []
    dlg.model_saved.connect(saved.append)
    dlg.start()
    wait(lambda: bool(saved))
    dlg.tabs.setCurrentIndex(1)
    dlg.evaluation.open_cell(0, 0)
    wait(lambda: win.runner.active_count() == 0)
    shot(dlg, "evaluation")
    dlg.close()

    from cnndesk.qt.dialogs.preferences import PreferencesDialog
    from cnndesk.qt.dialogs.sort_dialog import SortDialog

    for name, d in (("preferences", PreferencesDialog(win.settings, win)), ("sort", SortDialog(str(folder / "sorted"), win)),
                    ("models", win.show_models())):
        d.show()
        shot(d, name)
        d.close()
    try:
        from cnndesk.qt.dialogs.help import HelpDialog

        h = HelpDialog(win)
        h.show()
        shot(h, "help")
        h.close()
    except ImportError:
        pass
    win.close()
    print("\n".join(problems) if problems else f"{tag}: every window fits")
    del app
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "small"))
